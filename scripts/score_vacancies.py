from matgen.pipeline.stem import score_detections
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(
    sm,
    score_detections,
    predictions={t: sm.input[t] for t in sm.params.names},
    detectors={t: sm.input[f"detector_{t}"] for t in sm.params.names},
    truth_points=sm.input.truth,
    table_path=sm.input.table,
    scores_out=sm.output.scores,
    curve_out=sm.output.curve,
    per_image_out=sm.output.per_image,
    points_out=sm.output.points,
    **sm.params.score,
)
