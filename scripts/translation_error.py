from matgen.pipeline.porous import translation_error
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
m = sm.params.morphology
run_stage(
    sm,
    translation_error,
    translated_tables=dict(zip(sm.params.methods, sm.input.translated)),
    translated_curves=dict(zip(sm.params.methods, sm.input.translated_curves)),
    truth_table=sm.input.truth,
    truth_curves=sm.input.truth_curves,
    microct_tiles=sm.input.microct,
    microct_table=sm.input.microct_table,
    per_tile_out=sm.output.per_tile,
    summary_out=sm.output.summary,
    bicubic_out=sm.output.bicubic,
    threshold=m["threshold"],
    smooth_sigma=m["smooth_sigma"],
    microct_levels=sm.params.microct_levels,
)
