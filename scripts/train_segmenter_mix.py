from matgen.pipeline.segmentation import train_mix
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    train_mix,
    images_path=sm.input.images,
    masks_path=sm.input.masks,
    table_path=sm.input.table,
    synthetic_images=sm.input.get("synthetic_images"),  # none for a real-only mix
    synthetic_masks=sm.input.get("synthetic_masks"),
    scores_out=sm.output.scores,
    model_out=sm.output.model,
    mix_name=sm.wildcards.mix,
    mix=sm.params.mix,
    generator_real=sm.params.generator_real,
    seeds=sm.params.seeds,
    classes=sm.params.classes,
    split=sm.params.split,
    score=sm.params.score,
    **sm.params.train,
)
