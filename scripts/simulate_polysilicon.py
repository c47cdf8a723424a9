from pathlib import Path

from matgen.synth.polysilicon import simulate_polysilicon
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(sm, simulate_polysilicon, out_dir=Path(sm.output.sheet).parent, **sm.params.simulate)
