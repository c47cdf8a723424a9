from matgen.pipeline.polysilicon import sample_conditional
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    sample_conditional,
    checkpoint=sm.input.model,
    family=sm.params.family,
    real_table_path=sm.input.real_table,
    images_out=sm.output.images,
    table_out=sm.output.table,
    **sm.params.sample,
)
