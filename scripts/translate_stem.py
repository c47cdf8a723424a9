from matgen.pipeline.stem import translate_simulation
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    translate_simulation,
    checkpoint=sm.input.model,
    images_path=sm.input.images,
    images_out=sm.output.images,
    input_noise=sm.params.input_noise,
    device=sm.params.device,
    **sm.params.translate,
)
