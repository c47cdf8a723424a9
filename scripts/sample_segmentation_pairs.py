from matgen.pipeline.segmentation import sample_pairs
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    sample_pairs,
    vqvae_path=sm.input.vqvae,
    pixelcnn_path=sm.input.pixelcnn,
    images_out=sm.output.images,
    masks_out=sm.output.masks,
    table_out=sm.output.table,
    **sm.params.sample,
)
