from matgen.train.distributed import launch
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
# One process per GPU the rule was given (torchrun), else one process on CPU / one GPU.
run_stage(
    sm,
    launch,
    target="matgen.train.stylegan2:train_stylegan2",
    nproc=int(sm.resources.get("gpu", 0) or 0),
    kwargs=dict(
        tiles_path=sm.input.tiles,
        images_path=sm.input.images,
        images_table_path=sm.input.images_table,
        model_out=sm.output.model,
        log_out=sm.output.log,
        snapshot_tolerances=sm.params.snapshot_tolerances,
        **sm.params.stylegan2,
    ),
)
