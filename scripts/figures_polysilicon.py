from matgen.figures.polysilicon import comparison_table_figure, samples_figure, traversal_figure
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821


def figures():
    samples = {
        name: {"images": i, "table": t}
        for name, i, t in zip(sm.params.names, sm.input.samples, sm.input.tables)
    }
    samples_figure(
        sm.input.images, sm.input.table, samples, sm.output.samples, sm.output.samples_csv
    )
    traversal_figure(
        sm.input.grid,
        sm.input.traversal,
        sm.params.classes,
        sm.output.traversal,
        span=sm.params.span,
    )
    comparison_table_figure(
        sm.input.summary, sm.input.judge, sm.output.comparison, sm.output.comparison_csv
    )


run_stage(sm, figures)
