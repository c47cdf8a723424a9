from matgen.pipeline.porous import sample_stylegan2
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    sample_stylegan2,
    checkpoint=sm.input.model,
    real_table_path=sm.input.real_table,
    tiles_out=sm.output.tiles,
    table_out=sm.output.table,
    **sm.params.sample,
)
