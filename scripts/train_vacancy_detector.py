from matgen.train.detector import train_vacancy_detector
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    train_vacancy_detector,
    images_path=sm.input.images,
    table_path=sm.input.table,
    points_path=sm.input.points,
    model_out=sm.output.model,
    log_out=sm.output.log,
    augment=sm.params.augment,
    experiment_images_path=sm.input.get("experiment_images"),
    experiment_table_path=sm.input.get("experiment_table"),
    **sm.params.train,
)
