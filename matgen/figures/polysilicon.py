"""Figures of the polysilicon study."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..io import save_table
from . import draw_table, plt, save_figure, show_image, use_style


def samples_figure(
    real_images: str | os.PathLike,
    real_table: str | os.PathLike,
    samples: dict[str, dict[str, str]],
    png_out: str | os.PathLike,
    csv_out: str | os.PathLike,
    per_class: int = 3,
    seed: int = 0,
    per_sample: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """One row per class: ``per_class`` real microstructures, then the same number from each
    generative model (name → {images, table}); real ones titled with their E11 label, generated
    ones with their E11 condition → the E11 their grains give (the study's physics, from the
    evaluation's ``per_sample`` table; without it the condition alone)."""
    use_style()
    real = pd.read_csv(real_table)
    sets = {"real": (np.load(real_images, mmap_mode="r"), real)}
    for name, paths in samples.items():
        sets[name] = (np.load(paths["images"], mmap_mode="r"), pd.read_csv(paths["table"]))
    classes = list(dict.fromkeys(real["class"].astype(str)))
    cols = per_class * len(sets)
    fig, axes = plt.subplots(
        len(classes),
        cols,
        figsize=(1.25 * cols, 1.45 * len(classes) + 0.6),
        constrained_layout=True,
        squeeze=False,
    )
    measured = (
        pd.read_csv(per_sample).set_index(["set", "index"])["e11_physics"]
        if per_sample is not None
        else pd.Series(dtype=float)
    )
    rng = np.random.default_rng(seed)
    records = []
    for r, name in enumerate(classes):
        for s, (set_name, (images, table)) in enumerate(sets.items()):
            idx = np.flatnonzero(table["class"].astype(str).to_numpy() == name)
            pick = (
                np.sort(rng.choice(idx, min(per_class, len(idx)), replace=False))
                if len(idx)
                else []
            )
            for c in range(per_class):
                ax = axes[r, s * per_class + c]
                if c >= len(pick):
                    ax.axis("off")
                    continue
                i = int(pick[c])
                e11 = float(table["e11"].iloc[i])
                physics = float(measured.get((set_name, i), np.nan))
                label_only = set_name == "real" or np.isnan(physics)  # nothing measured to add
                title = f"{e11:.1f}" if label_only else f"{e11:.1f} → {physics:.1f}"
                show_image(
                    ax, np.asarray(images[i, 0], np.float32), f"{set_name}\nE11 {title}", fontsize=7
                )
                records.append(
                    {"class": name, "set": set_name, "index": i, "e11": e11, "e11_physics": physics}
                )
            if s == 0:
                axes[r, 0].set_ylabel(f"RVE {name}", fontsize=9)
    fig.suptitle(
        "Polysilicon per class (RVE size), real vs conditional generators — E11 (GPa): "
        "real, label; generated, condition → from its grains"
    )
    table = pd.DataFrame(records)
    save_table(csv_out, table.rename(columns=lambda c: c.replace("\n", " ")))
    save_figure(fig, png_out)
    return table


def traversal_figure(
    grid_path: str | os.PathLike,
    summary_path: str | os.PathLike,
    classes: list[str],
    png_out: str | os.PathLike,
    span: float = 3.0,
    model: str = "cVAE",
) -> None:
    """For each class, a grid of decoded images: rows = global latent variables, columns = the
    sweep from −span σ to +span σ; each row is labelled with the property it changes most and by
    how much, in real within-class σ (see the summary CSV from
    :func:`~matgen.pipeline.polysilicon.latent_traversal`)."""
    use_style()
    grid = np.load(grid_path)
    summary = pd.read_csv(summary_path)
    n_classes, dims, steps, res, _ = grid.shape
    cols = min(2, n_classes)  # two classes a row: tiles big enough to see single grains
    rows = -(-n_classes // cols)
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(cols * (0.8 * steps + 1.6), rows * (0.8 * dims + 0.6) + 0.6),
        constrained_layout=True,
        squeeze=False,
    )
    for ax in axes.ravel()[n_classes:]:
        ax.set_axis_off()
    gap = 2
    for k in range(n_classes):
        mosaic = np.ones((dims * (res + gap) - gap, steps * (res + gap) - gap))
        for j in range(dims):
            for s in range(steps):
                mosaic[
                    j * (res + gap) : j * (res + gap) + res, s * (res + gap) : s * (res + gap) + res
                ] = grid[k, j, s]
        ax = axes[k // cols, k % cols]
        ax.imshow(mosaic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"RVE {classes[k]}", fontsize=10)
        ax.set_xticks([(res + gap) * s + res / 2 for s in (0, steps // 2, steps - 1)])
        ax.set_xticklabels([f"−{span:g}σ", "0", f"+{span:g}σ"], fontsize=8)
        ax.set_yticks([(res + gap) * j + res / 2 for j in range(dims)])
        if k % cols == 0:
            ax.set_yticklabels(
                [
                    f"z{j}: {d.replace('_', ' ')} {row[d + '_change']:.1f}σ"
                    for j, d, (_, row) in zip(summary.latent, summary.dominant, summary.iterrows())
                ],
                fontsize=8,
            )
        else:
            ax.set_yticklabels([f"z{j}" for j in range(dims)], fontsize=8)
    fig.suptitle(
        f"{model} global latent traversals (others at 0, one local map; E11 condition at the "
        "class median)\nrow label = property changing most, range in real within-class σ",
        fontsize=10,
    )
    save_figure(fig, png_out)


def comparison_table_figure(
    summary_path: str | os.PathLike,
    evaluator_metrics: str | os.PathLike,
    png_out: str | os.PathLike,
    csv_out: str | os.PathLike,
) -> pd.DataFrame:
    """VAE vs GAN (vs real) as a rendered table, with the CNN judge's held-out scores."""
    use_style()
    summary = pd.read_csv(summary_path)
    judge = pd.read_csv(evaluator_metrics).iloc[0]
    columns = {
        "set": "set",
        "n": "n",
        "cnn_class_accuracy": "CNN\nclass acc.",
        "cnn_e11_mae": "CNN E11\nMAE (GPa)",
        "physics_e11_mae": "physics E11\nMAE (GPa)",
        "physics_mae_over_real_std": "physics MAE\n/ real σ",
        "physics_mae_over_class_mean_guess": "physics MAE /\nclass-mean\nguess's",
        "orientation_w1_uniform": "orientations:\nW1 to uniform",
        "frechet_distance": "Fréchet dist.\n(CNN features)",
        # at the real class mix: samples are drawn evenly over the classes, the real images not
        "mean_grains_real_mix": "grains / image\n(real class mix)",
    }
    columns = {k: v for k, v in columns.items() if k in summary}  # older runs lack some
    table = summary[list(columns)].rename(columns=columns)
    cells = [
        [f"{v:.3g}" if isinstance(v, float) else str(v) for v in row]
        for row in table.itertuples(index=False)
    ]
    fig, ax = plt.subplots(figsize=(1.5 * len(columns), 0.45 * len(cells) + 1.5))
    draw_table(ax, cells, list(table.columns))
    ax.set_title(
        f"Synthetic microstructures judged against their conditions — CNN judge held-out: "
        f"accuracy {judge.accuracy:.3f}, E11 MAE {judge.e11_mae:.2f} GPa, "
        f"R² {judge.e11_r2:.2f}",
        fontsize=10,
    )
    save_table(csv_out, table.rename(columns=lambda c: c.replace("\n", " ")))
    save_figure(fig, png_out)
    return table
