from matgen.pipeline.porous import stylegan2_panels
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
m = sm.params.morphology
run_stage(
    sm,
    stylegan2_panels,
    checkpoint=sm.input.model,
    real_tiles=sm.input.real,
    panels_out=sm.output.panels,
    table_out=sm.output.table,
    layout_out=sm.output.layout,
    seed=sm.params.seed,
    threshold=m["threshold"],
    smooth_sigma=m["smooth_sigma"],
)
