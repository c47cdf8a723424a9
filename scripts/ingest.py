from matgen.data.ingest import ingest_domain
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    ingest_domain,
    sample_sheet=sm.input.sheet,
    domain=sm.wildcards.domain,
    images_out=sm.output.images,
    masks_out=sm.output.masks,
    table_out=sm.output.table,
    **sm.params.ingest,
)
