from matgen.data.tiling import tile_paired
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    tile_paired,
    tile_table_path=sm.input.table,
    paired_images_path=sm.input.images,
    paired_table_path=sm.input.paired_table,
    tiles_out=sm.output.tiles,
    table_out=sm.output.table,
)
