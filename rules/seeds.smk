# `make seeds`: the study once per training-seed offset (config/seeds.yaml), each a module of
# this one DAG writing under <seeds.results>/seed<offset>, so a cluster runs the seeds side by
# side; then one headline table over them, with 95 % intervals over seeds.
import os

from matgen.config import config_for_seed

SEEDS = config["seeds"]
BASE = {k: v for k, v in config.items() if k != "seeds"}
SEED_RESULTS = {o: f"{SEEDS['results']}/seed{o}" for o in SEEDS["offsets"]}

rule headline_seeds:
    input:
        unpack(lambda wc: headline_inputs_for(list(SEED_RESULTS.values()))),
    output:
        csv=f"{SEEDS['results']}/summary/headline.csv",
        md=f"{SEEDS['results']}/summary/headline.md",
    params:
        compare=BASE["porous"]["compare"],
        targets=BASE["headline"],
    threads: 1
    log:
        f"{SEEDS['results']}/logs/headline.log",
    conda:
        "../envs/matgen.yaml"
    script:
        "../scripts/headline.py"


def offset0_figures():
    """Offset 0's figures (`make study`'s models), drawn as `make study` draws them, so the
    README's thumbnails come from the run behind its table (none without offset 0)."""
    if 0 not in SEED_RESULTS:
        return []
    return [SEED_RESULTS[0] + t[len(RESULTS):] for t in all_targets() if t.endswith(".png")]


rule all_seeds:
    default_target: True
    input:
        rules.headline_seeds.output.csv,
        [f"{r}/summary/headline.csv" for r in SEED_RESULTS.values()],
        offset0_figures(),


for _offset, _results in SEED_RESULTS.items():
    # what `module seed<k>: ...` and `use rule * from seed<k> as seed<k>_*` compile to, with a
    # name per offset
    workflow.module(
        f"seed{_offset}",
        snakefile=os.path.join(workflow.basedir, "Snakefile"),
        config=config_for_seed(BASE, _offset, _results),
    )
    workflow.userule(rules=["*"], from_module=f"seed{_offset}", name_modifier=f"seed{_offset}_*")(
        lambda: None
    )
