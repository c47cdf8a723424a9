from matgen.pipeline.polysilicon import latent_traversal
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    latent_traversal,
    checkpoint=sm.input.model,
    family=sm.params.family,
    real_table_path=sm.input.real_table,
    grid_out=sm.output.grid,
    table_out=sm.output.table,
    summary_out=sm.output.summary,
    **sm.params.traversal,
)
