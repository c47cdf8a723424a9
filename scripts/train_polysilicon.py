from matgen.train.conditional import train_cgan, train_vae
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
train = {"cvae": train_vae, "cgan": train_cgan}[sm.params.family]
run_stage(
    sm,
    train,
    images_path=sm.input.images,
    table_path=sm.input.table,
    model_out=sm.output.model,
    log_out=sm.output.log,
    classes=sm.params.classes,
    **sm.params.train,
)
