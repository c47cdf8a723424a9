from matgen.train.conditional import train_evaluator
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    train_evaluator,
    images_path=sm.input.images,
    table_path=sm.input.table,
    model_out=sm.output.model,
    log_out=sm.output.log,
    metrics_out=sm.output.metrics,
    classes=sm.params.classes,
    **sm.params.train,
)
