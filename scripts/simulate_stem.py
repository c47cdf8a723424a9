from pathlib import Path

from matgen.synth.stem import simulate_stem
from matgen.workflow import run_stage

sm = snakemake  # noqa: F821
run_stage(sm, simulate_stem, out_dir=Path(sm.output.sheet).parent, **sm.params.simulate)
