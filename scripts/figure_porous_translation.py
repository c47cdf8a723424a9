from matgen.figures.porous import translation_figure
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    translation_figure,
    microct_tiles=sm.input.microct,
    bicubic_tiles=sm.input.bicubic,
    translated_tiles=dict(zip(sm.params.methods, sm.input.translated)),
    truth_tiles=sm.input.truth,
    per_tile=sm.input.per_tile,
    summary=sm.input.summary,
    png_out=sm.output.png,
    csv_out=sm.output.csv,
    unit=sm.params.unit,
)
