from matgen.pipeline.segmentation import evaluate_segmentation
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    evaluate_segmentation,
    inputs=dict(sm.input.items()),
    outputs=dict(sm.output.items()),
    classes=sm.params.classes,
    split=sm.params.split,
    generator_real=sm.params.generator_real,
)
