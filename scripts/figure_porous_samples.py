from matgen.figures.porous import stylegan2_samples_figure
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    stylegan2_samples_figure,
    panels=sm.input.panels,
    table=sm.input.table,
    png_out=sm.output.png,
    csv_out=sm.output.csv,
    layout=sm.input.layout,
)
