from matgen.pipeline.polysilicon import evaluate_samples
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
samples = {
    name: {"images": i, "table": t}
    for name, i, t in zip(sm.params.names, sm.input.samples, sm.input.tables)
}
run_stage(
    sm,
    evaluate_samples,
    evaluator=sm.input.evaluator,
    samples=samples,
    real_images=sm.input.images,
    real_table=sm.input.table,
    per_sample_out=sm.output.per_sample,
    summary_out=sm.output.summary,
    per_class_out=sm.output.per_class,
)
