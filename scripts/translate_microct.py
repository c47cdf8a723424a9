from matgen.pipeline.porous import translate_microct
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    translate_microct,
    checkpoint=sm.input.model,
    tiles_path=sm.input.tiles,
    table_path=sm.input.table,
    tiles_out=sm.output.tiles,
    table_out=sm.output.table,
    batch_size=sm.params.batch_size,
)
