from matgen.data.points import ingest_point_domain
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    ingest_point_domain,
    sample_sheet=sm.input.sheet,
    domain=sm.wildcards.domain,
    images_out=sm.output.images,
    table_out=sm.output.table,
    points_out=sm.output.points,
    pixel_size=sm.params.pixel_size,
    default_unit=sm.params.default_unit,
    require_points=sm.params.require_points,
)
