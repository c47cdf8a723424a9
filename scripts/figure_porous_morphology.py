from matgen.figures.porous import morphology_figure
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    morphology_figure,
    datasets={
        "SEM": {"table": sm.input.table, "curves": sm.input.curves, "summary": sm.input.summary}
    },
    png_out=sm.output.png,
    csv_out=sm.output.csv,
    unit=sm.params.unit,
)
