from matgen.pipeline.morphology import morphology_of_tiles
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
p = sm.params.morphology
run_stage(
    sm,
    morphology_of_tiles,
    tiles_path=sm.input.tiles,
    tile_table_path=sm.input.table,
    table_out=sm.output.table,
    curves_out=sm.output.curves,
    summary_out=sm.output.summary,
    threshold=p["threshold"],
    smooth_sigma=p["smooth_sigma"],
    r_max=p["r_max"] or None,
)
