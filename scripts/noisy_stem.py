from matgen.pipeline.stem import add_shot_noise
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm, add_shot_noise, images_path=sm.input.images, images_out=sm.output.images, **sm.params.noisy
)
