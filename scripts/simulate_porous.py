from pathlib import Path

from matgen.synth.porous import simulate_porous
from matgen.workflow import run_stage

run_stage(
    snakemake,
    simulate_porous,
    out_dir=Path(snakemake.output.sheet).parent,  # noqa: F821
    **snakemake.params.simulate,
)  # noqa: F821
