from matgen.figures.stem import robustness_figure
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm, robustness_figure, table=sm.input.table, png_out=sm.output.png, target=sm.params.target
)
