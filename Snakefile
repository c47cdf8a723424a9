# matgen: deep generative models for materials micrographs, one reproducible workflow.
# Run: snakemake --profile profiles/local   (embedded default, CPU)
#      snakemake --profile profiles/slurm --configfile config/paper.yaml --replace-workflow-config
#      (paper scale: paper.yaml replaces the embedded default instead of merging over it)
import sys

from matgen.config import validate_config
from matgen.errors import InputError


configfile: "config/config.yaml"


report: "report/workflow.rst"


try:
    validate_config(config, workflow.source_path("config/schema.yaml"), source="config")
except InputError as exc:
    sys.exit(f"error: {exc}")


include: "rules/common.smk"


# `make seeds` (config/seeds.yaml): this workflow once per training seed, as modules of one DAG
if "seeds" in config:

    include: "rules/seeds.smk"


else:

    include: "rules/simulate.smk"
    include: "rules/ingest.smk"
    include: "rules/tile.smk"
    include: "rules/generate.smk"
    include: "rules/evaluate.smk"
    include: "rules/figures.smk"
    include: "rules/summary.smk"

    # An optional study is configured or not: its rules exist only when its config slice does.
    if "polysilicon" in config:

        include: "rules/polysilicon.smk"

    if "stem" in config:

        include: "rules/stem.smk"

    if "segmentation" in config:

        include: "rules/segmentation.smk"

    rule all:
        input:
            all_targets(),
