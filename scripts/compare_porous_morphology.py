from matgen.pipeline.porous import compare_morphology
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    compare_morphology,
    tables=dict(zip(sm.params.labels, sm.input.tables)),
    tiles=dict(zip(sm.params.labels, sm.input.tiles)),
    distances_out=sm.output.distances,
    spectra_out=sm.output.spectra,
    real=sm.params.labels[0],
    smooth_sigma=sm.params.smooth_sigma,
    **sm.params.compare,
)
