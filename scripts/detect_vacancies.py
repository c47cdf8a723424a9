from matgen.pipeline.stem import detect_in_stack
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    detect_in_stack,
    checkpoint=sm.input.model,
    images_path=sm.input.images,
    table_path=sm.input.table,
    points_out=sm.output.points,
    device=sm.params.device,
    **sm.params.detect,
)
