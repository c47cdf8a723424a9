from matgen.pipeline.robustness import merge_robustness_tables
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    merge_robustness_tables,
    tables=dict(zip(sm.params.names, sm.input.tables)),
    table_out=sm.output.table,
)
