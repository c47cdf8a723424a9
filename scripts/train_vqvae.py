from matgen.pipeline.segmentation import fit_vqvae
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    fit_vqvae,
    images_path=sm.input.images,
    masks_path=sm.input.masks,
    table_path=sm.input.table,
    model_out=sm.output.model,
    log_out=sm.output.log,
    classes=sm.params.classes,
    split=sm.params.split,
    n_real=sm.params.n_real,
    **sm.params.train,
)
