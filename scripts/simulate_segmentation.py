from pathlib import Path

from matgen.synth.segmentation import simulate_segmentation
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(sm, simulate_segmentation, out_dir=Path(sm.output.sheet).parent, **sm.params.simulate)
