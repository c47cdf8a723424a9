from matgen.figures.stem import stem_figures
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    stem_figures,
    inputs=dict(sm.input.items()),
    outputs=dict(sm.output.items()),
)
