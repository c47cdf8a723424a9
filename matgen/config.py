"""Config validation against config/schema.yaml with one-line errors naming the key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    return data or {}


def _validator_filling_defaults() -> Any:
    """A Draft 2020-12 validator that, before checking an object's ``properties``, sets every
    absent property that has a ``default`` to (a copy of) it; defaults of objects are filled
    in turn, so nested defaults all land. The schema is the one home of every default."""
    import copy

    import jsonschema

    base = jsonschema.Draft202012Validator
    check_properties = base.VALIDATORS["properties"]

    def properties(validator: Any, props: dict, instance: Any, schema: dict) -> Any:
        if isinstance(instance, dict):
            for name, sub in props.items():
                if isinstance(sub, dict) and "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from check_properties(validator, props, instance, schema)

    return jsonschema.validators.extend(base, {"properties": properties})


def validate_config(
    config: dict[str, Any], schema_path: str | os.PathLike, source: str = "config"
) -> dict[str, Any]:
    """Check ``config`` against the JSON schema, filling every absent key that the schema gives
    a default (in place); raise :class:`InputError` for the first problem.

    The message names the key as a dotted path, e.g.
    ``config: key porous.tile.sem.stride: -4 is less than the minimum of 1``.
    """
    schema = load_yaml(schema_path)
    validator = _validator_filling_defaults()(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        error = errors[0]
        key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise InputError(f"{source}: key {key}: {error.message}")
    _check_cross_references(config, source)
    return config


def _check_cross_references(config: dict[str, Any], source: str) -> None:
    """What a JSON schema cannot say: keys that must name other keys, sizes that must agree."""
    porous = config.get("porous", {})
    tiled = porous.get("tile", {})
    domain = porous.get("translate", {}).get("domain", "")
    if domain and domain not in tiled:
        raise InputError(
            f"{source}: key porous.translate.domain: {domain!r} is not a tiled "
            f"domain (porous.tile has {sorted(tiled)})"
        )
    poly = config.get("polysilicon", {})
    sim = poly.get("simulate", {})
    if sim and len(sim.get("images_per_class", [])) != len(sim.get("rve_sizes_um", [])):
        raise InputError(
            f"{source}: key polysilicon.simulate.images_per_class: one count per "
            f"RVE size ({len(sim.get('rve_sizes_um', []))}) needed"
        )
    if (
        sim
        and not poly.get("sample_sheet")
        and [f"{r:g}um" for r in sim["rve_sizes_um"]] != list(poly.get("classes", []))
    ):
        raise InputError(
            f"{source}: key polysilicon.classes: the embedded generator names its "
            f"classes {[f'{r:g}um' for r in sim['rve_sizes_um']]}"
        )
    if "stylegan2" in porous and "sem" in tiled:
        size = tiled["sem"]["size"]
        if size < 4 or size & (size - 1):
            raise InputError(
                f"{source}: key porous.tile.sem.size: StyleGAN2 needs a power of two, got {size}"
            )


# The seeds of the models each study trains (generators and downstream nets); data, tiling and
# splits keep theirs, so every training seed sees the same data.
MODEL_SEEDS = {
    "porous": ("stylegan2", "cyclegan"),
    "polysilicon": ("vae", "gan", "evaluator"),
    "stem": ("cyclegan", "translate", "detector"),
    "segmentation": ("vqvae", "pixelcnn", "sample"),
}
SEED_STRIDE = 1000  # offset k moves every model seed by k * SEED_STRIDE


def config_for_seed(config: dict[str, Any], offset: int, results: str) -> dict[str, Any]:
    """The study's config for training-seed ``offset``, writing under ``results``: every model
    seed (and the segmentation U-Nets' seed list) moved by ``offset * SEED_STRIDE``; offset 0
    is the config itself, so its results are those of a plain run."""
    import copy

    out = copy.deepcopy(config)
    out.pop("seeds", None)
    out["results"] = results
    shift = int(offset) * SEED_STRIDE
    for study, sections in MODEL_SEEDS.items():
        for section in sections:
            node = out.get(study, {}).get(section)
            if isinstance(node, dict) and "seed" in node:
                node["seed"] = int(node["seed"]) + shift
    if "segmentation" in out and "seeds" in out["segmentation"]:
        out["segmentation"]["seeds"] = [int(s) + shift for s in out["segmentation"]["seeds"]]
    return out
