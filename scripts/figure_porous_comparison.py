from matgen.figures.porous import porous_comparison_figure
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
labels = sm.params.labels
datasets = {
    label: {"table": t, "curves": c, "summary": s}
    for label, t, c, s in zip(labels, sm.input.tables, sm.input.curves, sm.input.summaries)
}
run_stage(
    sm,
    porous_comparison_figure,
    datasets=datasets,
    real=labels[0],
    distances=sm.input.distances,
    png_out=sm.output.png,
    csv_out=sm.output.csv,
    unit=sm.params.unit,
    spectra=sm.input.spectra,
)
