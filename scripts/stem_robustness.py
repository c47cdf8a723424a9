from matgen.pipeline.robustness import robustness_sweep
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
score = sm.params.score
run_stage(
    sm,
    robustness_sweep,
    detectors={sm.wildcards.trainset: sm.input.model},
    table_out=sm.output.table,
    simulate=sm.params.simulate,
    sweep=sm.params.robustness["sweep"],
    n_images=sm.params.robustness["n_images"],
    seed=sm.params.robustness["seed"],
    detect={**sm.params.detect, "tta": sm.params.robustness["tta"]},
    threshold=score["threshold"],
    tolerance_angstrom=score["tolerance_angstrom"],
    border_angstrom=score["border_angstrom"],
    pixel_size=sm.params.pixel_size,
    device=sm.params.device,
)
