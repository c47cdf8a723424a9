"""Stages of the polysilicon study after training: sample conditioned microstructures, judge
them with the CNN and with the physics that made the real data, and measure what each latent
variable of the VAE controls."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..data.conditions import Conditioning, load_labelled
from ..errors import InputError
from ..inference.conditional import judge, load_conditional
from ..io import save_image, save_npy, save_table
from ..metrics.distributions import frechet_distance, orientation_nonuniformity
from ..metrics.morphology import axis_aligned_boundary_fraction
from ..metrics.regression import regression_scores
from ..synth.polysilicon import BOUNDARY_THRESHOLD, GREY_RANGE, e11_of_image, grain_count
from ..util import progress, select_device

if TYPE_CHECKING:  # torch is imported where it is used: the CLI starts fast
    import torch


def decode(
    model: "torch.nn.Module", z: np.ndarray, eps: np.ndarray, cond: np.ndarray
) -> np.ndarray:
    """Grain maps in [0, 1] (N, 1, R, R) from standard normal global latents (N, Z) and local
    noise maps (N, L, G, G) and from condition vectors, by a cVAE's prior and decoder or a cGAN's
    generator."""
    import torch

    dev = next(model.parameters()).device

    def tensor(a: np.ndarray) -> "torch.Tensor":
        return torch.from_numpy(np.asarray(a, np.float32)).to(dev)

    with torch.no_grad():
        x = model.sample(tensor(z), tensor(eps), tensor(cond))
    return x.clamp(0, 1).cpu().numpy()


def draw_latents(
    model: "torch.nn.Module", n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` standard normal global latents and local noise maps."""
    z = rng.standard_normal((n, model.latent_dim)).astype(np.float32)
    return z, rng.standard_normal((n, *model.local_shape)).astype(np.float32)


def sample_conditional(
    checkpoint: str | os.PathLike,
    family: str,
    real_table_path: str | os.PathLike,
    images_out: str | os.PathLike,
    table_out: str | os.PathLike,
    *,
    n: int = 200,
    seed: int = 0,
    device: str = "auto",
) -> pd.DataFrame:
    """``n`` synthetic microstructures, spread evenly over the classes; each is conditioned on
    its class and on an E11 drawn from the real images of that class, so the (class, E11) pairs
    are physical. Writes a float16 stack, one PNG per sample beside it and a table (path,
    class, e11 — the conditioned value —, seed)."""
    if n < 1:
        raise InputError(f"sample: n must be at least 1, got {n}")
    model, cond = load_conditional(checkpoint, family, str(select_device(device)))
    real = pd.read_csv(real_table_path)
    rng = np.random.default_rng(seed)
    per_class = np.full(len(cond.classes), n // len(cond.classes))
    per_class[: n % len(cond.classes)] += 1
    class_index = np.repeat(np.arange(len(cond.classes)), per_class)
    e11 = np.empty(n)
    for k, name in enumerate(cond.classes):
        pool = real.loc[real["class"].astype(str) == name, "e11"].to_numpy(float)
        if len(pool) == 0:
            raise InputError(
                f"{real_table_path}: no real images of class {name!r} to draw E11 from"
            )
        e11[class_index == k] = rng.choice(pool, int((class_index == k).sum()))
    z, local = draw_latents(model, n, rng)
    images = decode(model, z, local, cond.encode(class_index, e11))
    out_dir = Path(images_out).parent
    names = []
    for i, image in enumerate(images):
        names.append(f"png/{family}_{i:04d}.png")
        save_image(out_dir / names[-1], np.round(image[0] * 255).astype(np.uint8))
    table = pd.DataFrame(
        {
            "path": names,
            "class": [cond.classes[k] for k in class_index],
            "e11": e11,
            "seed": seed,
            "index": np.arange(n),
        }
    )
    save_npy(images_out, images.astype(np.float16))
    save_table(table_out, table)
    return table


def evaluate_samples(
    evaluator: str | os.PathLike,
    samples: dict[str, dict[str, str]],
    real_images: str | os.PathLike,
    real_table: str | os.PathLike,
    per_sample_out: str | os.PathLike,
    summary_out: str | os.PathLike,
    device: str = "auto",
    per_class_out: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Judge each synthetic set (name → {images, table}) against its conditions.

    Per set: CNN class accuracy against the conditioned class, CNN-predicted E11 MAE and R²
    against the conditioned E11, E11 computed from the image by the generator's physics
    (grey level → orientation → Voigt/Reuss/Hill) MAE against the condition, also over the MAE
    of guessing each map's real class-mean E11 (below 1: the maps carry their E11 condition,
    not only their class), the W1 distance of the grain orientations to a uniform
    distribution, grain counts, and
    the Fréchet distance between CNN features of the real set and of the samples. The real set
    itself is scored the same way as a reference row (CNN on real images, physics from real
    images). ``per_class_out``: per set and class, the mean grain count and mean grain area
    (matgen's own grain segmentation) and their ratios to the real images' of that class, and
    the share of boundary pixels in straight axis-aligned runs relative to the real images' (a
    lattice of square grains scores far above 1); the summary carries each set's worst class
    ratio of each (furthest from 1).
    """
    model, cond = load_conditional(evaluator, "cnn", str(select_device(device)))
    real = load_labelled(real_images, real_table, list(cond.classes))
    real_judged = judge(model, real.images, cond)
    sets = {"real": (real.images, real.class_index, real.target)}
    for name, paths in samples.items():
        table = pd.read_csv(paths["table"])
        images = np.asarray(np.load(paths["images"]), np.float32)
        sets[name] = (
            images,
            cond.class_index(table["class"].astype(str)),
            table["e11"].to_numpy(float),
        )
    # what ignoring the E11 condition would score: each map's class mean of the real E11
    class_mean_e11 = pd.Series(real.target).groupby(real.class_index).mean()
    rows, summary = [], []
    for name, (images, class_index, e11) in sets.items():
        judged = real_judged if name == "real" else judge(model, images, cond)
        physics = np.array(
            [
                e11_of_image(im[0])["hill"]
                for im in progress(images, desc=f"physics E11 ({name})", total=len(images))
            ]
        )
        grains = np.array([grain_count(im[0]) for im in images])
        areas = np.array([mean_grain_area(im[0], g) for im, g in zip(images, grains)])
        aligned = axis_aligned_boundary_fraction(np.asarray(images)[:, 0] < BOUNDARY_THRESHOLD)
        rows.append(
            pd.DataFrame(
                {
                    "set": name,
                    "index": np.arange(len(images)),
                    "class": [cond.classes[k] for k in class_index],
                    "e11_condition": e11,
                    "class_predicted": [cond.classes[k] for k in judged["class_index"]],
                    "e11_cnn": judged["target"],
                    "e11_physics": physics,
                    "grains": grains,
                    "mean_grain_area": areas,
                    "axis_aligned_boundaries": aligned,
                }
            )
        )
        physics_ok = np.isfinite(physics)
        guess = np.abs(class_mean_e11.reindex(class_index).to_numpy() - e11)[physics_ok]
        physics_mae = float(np.abs(physics[physics_ok] - e11[physics_ok]).mean())
        summary.append(
            {
                "set": name,
                "n": len(images),
                "cnn_class_accuracy": float((judged["class_index"] == class_index).mean()),
                "cnn_e11_mae": regression_scores(judged["target"], e11)["e11_mae"],
                "cnn_e11_r2": regression_scores(judged["target"], e11)["e11_r2"],
                "physics_e11_mae": physics_mae,
                "physics_e11_r2": regression_scores(physics[physics_ok], e11[physics_ok])["e11_r2"],
                "physics_mae_over_class_mean_guess": physics_mae / float(guess.mean()),
                "real_e11_std": float(real.target.std()),
                "frechet_distance": 0.0
                if name == "real"
                else frechet_distance(real_judged["features"], judged["features"]),
                "mean_grains": float(grains.mean()),
                # uniformly random in the real RVEs: 0.008 on 200 real maps (sampling)
                "orientation_w1_uniform": orientation_nonuniformity(
                    images, GREY_RANGE, BOUNDARY_THRESHOLD
                ),
            }
        )
    per_sample = pd.concat(rows, ignore_index=True)
    out = pd.DataFrame(summary)
    out["physics_mae_over_real_std"] = out["physics_e11_mae"] / out["real_e11_std"]
    per_class = grains_per_class(per_sample)
    out["mean_grains_real_mix"] = out["set"].map(_grains_at_real_class_mix(per_class))
    for column, worst in worst_class_ratios(per_class).items():
        out[f"{column}_worst_class"] = out["set"].map(worst)
    if per_class_out is not None:
        save_table(per_class_out, per_class)
    save_table(per_sample_out, per_sample)
    save_table(summary_out, out)
    return out


def worst_class_ratios(per_class: pd.DataFrame) -> dict[str, pd.Series]:
    """Per set, the ratio to real of its worst class, on each target's scale: grain count and
    mean grain area farthest from 1 (their targets are ±20 %), the axis-aligned boundary share
    highest (only too many aligned boundaries, a lattice, fail). ``per_class``:
    :func:`grains_per_class`'s table."""
    out = {}
    for column in ("grains_ratio", "area_ratio", "alignment_ratio"):
        off = per_class[column] if column == "alignment_ratio" else (per_class[column] - 1).abs()
        out[column] = per_class.assign(off=off).sort_values("off").groupby("set").last()[column]
    return out


def grains_per_class(per_sample: pd.DataFrame) -> pd.DataFrame:
    """Mean grain count, grain area (px) and axis-aligned boundary share per set and class, with
    their ratios to the real images' of the class and whether count and area lie within ±20 %."""
    aligned = "axis_aligned_boundaries"
    if aligned not in per_sample:  # tables written before the column existed
        per_sample = per_sample.assign(**{aligned: np.nan})
    table = (
        per_sample.groupby(["set", "class"], sort=False)
        .agg(n=("index", "size"), mean_grains=("grains", "mean"),
             mean_grain_area=("mean_grain_area", "mean"), axis_aligned_boundaries=(aligned, "mean"))
        .reset_index()
    )  # fmt: skip
    real = table[table["set"] == "real"].set_index("class")
    table["grains_ratio"] = table["mean_grains"] / table["class"].map(real["mean_grains"])
    table["area_ratio"] = table["mean_grain_area"] / table["class"].map(real["mean_grain_area"])
    table["alignment_ratio"] = table[aligned] / table["class"].map(real[aligned])
    table["within_20_percent"] = (np.abs(table["grains_ratio"] - 1) <= 0.2) & (
        np.abs(table["area_ratio"] - 1) <= 0.2
    )
    return table


def _grains_at_real_class_mix(per_class: pd.DataFrame) -> pd.Series:
    """Each set's grains per image with its classes weighted as the real images' are.

    A set's plain mean mixes classes in its own proportions: 200 samples drawn evenly over the
    four RVE sizes hold more 10 µm maps (≈ 225 grains) than the real images (40 % of which are
    2 µm, ≈ 19 grains), so the plain ratio reads 1.25 for samples whose every class matches."""
    real = per_class[per_class["set"] == "real"].set_index("class")
    table = per_class.assign(share=per_class["class"].map(real["n"] / real["n"].sum()))
    return pd.Series(
        {
            name: float(np.average(group["mean_grains"], weights=group["share"]))
            for name, group in table.groupby("set", sort=False)
        }
    )


PROPERTIES = ("grains", "mean_grain_area", "grey_std", "e11_physics")


def mean_grain_area(
    image: np.ndarray, grains: int, boundary_threshold: float = BOUNDARY_THRESHOLD
) -> float:
    """The non-boundary pixels shared among ``grains`` grains (px per grain)."""
    return float((image > boundary_threshold).sum() / max(grains, 1))


def describe_microstructure(
    image: np.ndarray, boundary_threshold: float = BOUNDARY_THRESHOLD
) -> dict[str, float]:
    """Grain count, mean grain area (px), spread of the grain grey levels, physics E11 (GPa)."""
    inside = image > boundary_threshold
    grains = grain_count(image, boundary_threshold)
    return {
        "grains": grains,
        "mean_grain_area": mean_grain_area(image, grains, boundary_threshold),
        "grey_std": float(image[inside].std()) if inside.any() else float("nan"),
        "e11_physics": e11_of_image(image, boundary_threshold)["hill"],
    }


def latent_traversal(
    checkpoint: str | os.PathLike,
    family: str,
    real_table_path: str | os.PathLike,
    grid_out: str | os.PathLike,
    table_out: str | os.PathLike,
    summary_out: str | os.PathLike,
    *,
    steps: int = 7,
    span: float = 3.0,
    seed: int = 0,
    device: str = "auto",
) -> pd.DataFrame:
    """Sweep each global latent variable of the cVAE or cGAN (``family`` ``cvae`` / ``cgan``)
    from −span to +span (σ units) with the others at 0, for every class (E11 condition at the
    class median). The local latent map (where nuclei may appear) is one draw (``seed``), the
    same along every sweep, so a row shows what its variable alone changes.

    Writes the decoded images (classes, latents, steps, R, R) as .npy, a table with the measured
    properties of every image, and a per-variable summary: for each property the mean over
    classes of (max − min along the sweep) divided by the real set's within-class standard
    deviation of that property, and the property that changes most (``dominant``).
    """
    model, cond = load_conditional(checkpoint, family, str(select_device(device)))
    real = pd.read_csv(real_table_path)
    values = np.linspace(-span, span, steps)
    dims = model.latent_dim
    _, local = draw_latents(model, 1, np.random.default_rng(seed))
    grid = np.empty(
        (len(cond.classes), dims, steps, model.resolution, model.resolution), np.float32
    )
    rows = []
    for k, name in enumerate(cond.classes):
        e11 = float(real.loc[real["class"].astype(str) == name, "e11"].median())
        z = np.zeros((dims * steps, dims), np.float32)
        for j in range(dims):
            z[j * steps : (j + 1) * steps, j] = values
        c = cond.encode(np.full(len(z), k), np.full(len(z), e11))
        images = decode(model, z, np.repeat(local, len(z), 0), c)
        grid[k] = images[:, 0].reshape(dims, steps, model.resolution, model.resolution)
        for j in range(dims):
            for s, v in enumerate(values):
                rows.append(
                    {
                        "class": name,
                        "latent": j,
                        "value": v,
                        **describe_microstructure(grid[k, j, s]),
                    }
                )
    table = pd.DataFrame(rows)
    spread = _real_property_spread(real_table_path, cond)
    summary = []
    for j in range(dims):
        sub = table[table.latent == j]
        entry = {"latent": j}
        for p in PROPERTIES:
            ranges = sub.groupby("class")[p].agg(lambda s: s.max() - s.min())
            entry[f"{p}_change"] = float((ranges / spread[p].reindex(ranges.index)).mean())
        entry["dominant"] = max(PROPERTIES, key=lambda p: entry[f"{p}_change"])
        summary.append(entry)
    summary = pd.DataFrame(summary)
    save_npy(grid_out, grid)
    save_table(table_out, table)
    save_table(summary_out, summary)
    return summary


def _real_property_spread(real_table_path: str | os.PathLike, cond: Conditioning) -> pd.DataFrame:
    """Within-class standard deviation of each property over (up to 64) real images per class."""
    from ..io import read_image, to_unit_float

    real = pd.read_csv(real_table_path)
    rows = []
    for name in cond.classes:
        paths = real.loc[real["class"].astype(str) == name, "path"].to_numpy()[:64]
        props = pd.DataFrame([describe_microstructure(to_unit_float(read_image(p))) for p in paths])
        rows.append(props.std().rename(name))
    return pd.DataFrame(rows).replace(0, np.nan)
