from matgen.figures.porous import training_curves_figure
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    training_curves_figure,
    logs=dict(sm.input.items()),
    png_out=sm.output.png,
    csv_out=sm.output.csv,
    ada_target=sm.params.ada_target,
)
