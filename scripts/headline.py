from matgen.pipeline.headline import headline_table
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    headline_table,
    inputs={k: list(v) for k, v in sm.input.items()},
    csv_out=sm.output.csv,
    md_out=sm.output.md,
    compare=sm.params.compare,
    targets=sm.params.targets,
)
