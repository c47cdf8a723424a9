from matgen.data.tiling import tile_domain
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    tile_domain,
    images_path=sm.input.images,
    table_path=sm.input.table,
    tiles_out=sm.output.tiles,
    tile_table_out=sm.output.table,
    **sm.params.tiling,
)
