from matgen.train.cyclegan import train_cyclegan
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    train_cyclegan,
    low_tiles_path=sm.input.sim,
    high_tiles_path=sm.input.exp,
    model_out=sm.output.model,
    log_out=sm.output.log,
    **sm.params.train,
)
