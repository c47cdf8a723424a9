from matgen.figures.segmentation import segmentation_figures
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    segmentation_figures,
    inputs=dict(sm.input.items()),
    outputs=dict(sm.output.items()),
    classes=sm.params.classes,
    split=sm.params.split,
)
