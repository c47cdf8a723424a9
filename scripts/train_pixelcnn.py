from matgen.pipeline.segmentation import fit_pixelcnn
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    fit_pixelcnn,
    vqvae_path=sm.input.vqvae,
    images_path=sm.input.images,
    masks_path=sm.input.masks,
    table_path=sm.input.table,
    model_out=sm.output.model,
    log_out=sm.output.log,
    split=sm.params.split,
    n_real=sm.params.n_real,
    **sm.params.train,
)
