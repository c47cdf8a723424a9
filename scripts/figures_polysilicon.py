from matgen.figures.polysilicon import comparison_table_figure, samples_figure, traversal_figure
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821


def figures():
    samples = {
        name: {"images": i, "table": t}
        for name, i, t in zip(sm.params.names, sm.input.samples, sm.input.tables)
    }
    samples_figure(
        sm.input.images,
        sm.input.table,
        samples,
        sm.output.samples,
        sm.output.samples_csv,
        per_sample=sm.input.per_sample,
    )
    for name, grid, summary, png in zip(
        sm.params.names,
        sm.input.grids,
        sm.input.traversals,
        [sm.output.traversal_vae, sm.output.traversal_gan],
    ):
        traversal_figure(grid, summary, sm.params.classes, png, span=sm.params.span, model=name)
    comparison_table_figure(
        sm.input.summary, sm.input.judge, sm.output.comparison, sm.output.comparison_csv
    )


run_stage(sm, figures)
