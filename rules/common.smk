# Input functions and paths shared by the rules. Rules only move files and parameters.
from pathlib import Path

RESULTS = config["results"]


wildcard_constraints:
    study="[a-z]+",
    domain="[a-z_]+",


def sample_sheet(study):
    """The user's sample sheet when configured, else the embedded default's."""
    sheet = config[study].get("sample_sheet", "")
    return sheet if sheet else f"{RESULTS}/{study}/raw/samples.tsv"


def tiling(study, domain):
    return config[study]["tile"][domain]


def paired_domain(study, domain):
    return tiling(study, domain).get("paired", "")


def all_targets():
    targets = [f"{RESULTS}/porous/figures/morphology.png"]
    for domain in config["porous"]["tile"]:
        targets.append(f"{RESULTS}/porous/tiles/{domain}/tiles.npy")
        if paired_domain("porous", domain):
            targets.append(f"{RESULTS}/porous/tiles/{domain}/paired.npy")
    return targets
