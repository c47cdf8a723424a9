"""Figures of the STEM study: Table 1 (P/R/F1 per training set), example panels (images, their
Fourier amplitudes, detections coloured TP/FP/FN), PR curves and training curves."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..data.ingest import load_stack
from ..data.points import scored_vacancy_types
from . import draw_table, plt, save_figure, show_image, use_style

SET_LABELS = {
    "noiseless": "(a) noiseless sim",
    "noisy": "(b) noisy sim",
    "cyclegan": "(c) CycleGAN sim→exp",
    "cyclegan_augmented": "(d) CycleGAN + days",
}


def _type_bars(ax: "plt.Axes", scores: pd.DataFrame, types: list[str]) -> None:
    """F1 per vacancy type and training set, with 95 % bootstrap intervals."""
    width = 0.8 / len(scores)
    for i, row in enumerate(scores.itertuples(index=False)):
        r = row._asdict()
        x = np.arange(len(types)) + (i - (len(scores) - 1) / 2) * width
        values = np.array([r[f"f1_{t}"] for t in types], float)
        err = [values - [r[f"f1_{t}_low"] for t in types],
               np.array([r[f"f1_{t}_high"] for t in types]) - values]  # fmt: skip
        ax.bar(x, np.nan_to_num(values), width, yerr=np.nan_to_num(err), capsize=3)
    n = scores.iloc[0]
    ax.set_xticks(np.arange(len(types)), [f"{t}\n({int(n[f'n_{t}'])} true)" for t in types])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("F1, right position and type")
    ax.set_title("per vacancy type", fontsize=9)


def table1_figure(scores_path: str | os.PathLike, png_out: str | os.PathLike) -> pd.DataFrame:
    """Bar chart of precision / recall / F1 with 95 % bootstrap intervals, F1 per vacancy type
    (where the labels have types), beside the table."""
    use_style()
    scores = pd.read_csv(scores_path)
    types = scored_vacancy_types(scores.columns)
    ratios = [1, 0.8, 1.4] if types else [1, 1.3]
    fig, axes = plt.subplots(1, len(ratios), figsize=(5 * sum(ratios) + 1, 3.6),
                             gridspec_kw={"width_ratios": ratios})  # fmt: skip
    ax, tab = axes[0], axes[-1]
    if types:
        _type_bars(axes[1], scores, types)
    metrics = ("precision", "recall", "f1")
    width = 0.8 / len(scores)
    for i, row in enumerate(scores.itertuples(index=False)):
        x = np.arange(len(metrics)) + (i - (len(scores) - 1) / 2) * width
        values = np.array([getattr(row, m) for m in metrics])
        low = values - np.array([getattr(row, f"{m}_low") for m in metrics])
        high = np.array([getattr(row, f"{m}_high") for m in metrics]) - values
        ax.bar(
            x,
            values,
            width,
            yerr=[low, high],
            capsize=3,
            label=SET_LABELS.get(row.training_set, row.training_set),
        )
    ax.set_xticks(np.arange(len(metrics)), ["precision", "recall", "F1"])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("on experimental images")
    ax.set_title("any vacancy type", fontsize=9)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False)
    cells = [
        [f"{SET_LABELS.get(r.training_set, r.training_set)}\nat p ≥ {r.threshold:.2f}"]
        + [
            f"{getattr(r, m):.3f}\n[{getattr(r, m + '_low'):.2f}, {getattr(r, m + '_high'):.2f}]"
            for m in metrics
        ]
        + [f"{r.tp} / {r.fp} / {r.fn}"]
        + ([f"{r.type_accuracy:.3f}" if np.isfinite(r.type_accuracy) else "–"] if types else [])
        for r in scores.itertuples()
    ]
    header = ["training set", "precision", "recall", "F1", "TP / FP / FN"]
    widths = [0.3, 0.17, 0.17, 0.17, 0.19]
    if types:  # share of the matched vacancies given their true type
        header, widths = header + ["type\naccuracy"], [0.3, 0.14, 0.14, 0.14, 0.16, 0.12]
    draw_table(tab, cells, header, row_scale=3.0, header_scale=1.0, col_widths=widths)
    first = scores.iloc[0]
    fixed = scores["threshold"].nunique() == 1
    cut = f"threshold {first.threshold:g}" if fixed else "each detector at its own operating point"
    fig.suptitle(
        f"Table 1 — vacancy detection on {int(first.n_images)} experimental images "
        f"({cut}, match within {first.tolerance_angstrom:g} Å; "
        f"95 % bootstrap intervals over images)",
        fontsize=10,
    )
    save_figure(fig, png_out)
    return scores


def _log_amplitude(image: np.ndarray) -> np.ndarray:
    h, w = image.shape
    window = np.outer(np.hanning(h), np.hanning(w))
    a = np.log1p(np.abs(np.fft.fftshift(np.fft.fft2((image - image.mean()) * window))))
    return (a - a.min()) / (np.ptp(a) + 1e-12)


def _draw_points(ax: "plt.Axes", image: np.ndarray, points: pd.DataFrame, title: str) -> None:
    """An image with its scored points: TP green circles, FP red squares, FN yellow diamonds."""
    show_image(ax, image, title)
    kw = dict(s=40, facecolors="none", linewidths=1.2)
    for status, colour, marker in (
        ("tp", "#00c853", "o"),
        ("fp", "#ff1744", "s"),
        ("fn", "#ffd600", "D"),
    ):
        xy = points[points.status == status]
        ax.scatter(
            xy.x_px,
            xy.y_px,
            edgecolors=colour,
            marker=marker,
            label=f"{status.upper()} {len(xy)}",
            **kw,
        )
    ax.legend(fontsize=7, loc="lower right", framealpha=0.8)


def examples_figure(
    sim: str | os.PathLike,
    noisy: str | os.PathLike,
    cyclegan: str | os.PathLike,
    exp: str | os.PathLike,
    exp_table: str | os.PathLike,
    points: str | os.PathLike,
    png_out: str | os.PathLike,
    *,
    sets: tuple[str, ...] = ("noiseless", "cyclegan"),
    crop: int = 128,
) -> None:
    """Row 1: a simulated image, its noisy version, its CycleGAN translation and an experimental
    image (crops); row 2: their Fourier log-amplitudes (whole images); row 3: the scored points
    (``points``, from the scoring stage: TP green, FP red, FN yellow) of the detectors trained
    on ``sets``, on the experimental image with the most vacancies."""
    use_style()
    table = pd.read_csv(exp_table)
    px = float(table["pixel_size"].iloc[0])
    images = {
        "noiseless sim": load_stack(sim)[0, 0],
        "noisy sim": load_stack(noisy)[0, 0],
        "CycleGAN(sim)": load_stack(cyclegan)[0, 0],
        "experiment": load_stack(exp)[0, 0],
    }
    fig = plt.figure(figsize=(13, 10.5))
    grid = fig.add_gridspec(3, 4, height_ratios=[1, 1, 1.9])
    for j, (name, image) in enumerate(images.items()):
        image = np.asarray(image, np.float32)
        c = min(crop, image.shape[0])
        show_image(fig.add_subplot(grid[0, j]), image[:c, :c], f"{name} ({c * px:.0f} Å)", 9)
        ax = fig.add_subplot(grid[1, j])
        ax.imshow(_log_amplitude(image), cmap="magma", interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"|FFT| (log) of {name}", fontsize=9)
    exp_images = load_stack(exp)
    scored = pd.read_csv(points)
    true_per_image = scored[(scored.training_set == sets[-1]) & (scored.status != "fp")]
    # the experimental image with most vacancies shows the contrast between detectors best
    k = int(true_per_image.image.value_counts().idxmax()) if len(true_per_image) else 0
    for j, name in enumerate(sets):
        ax = fig.add_subplot(grid[2, 2 * j : 2 * j + 2])
        _draw_points(
            ax,
            np.asarray(exp_images[k, 0], np.float32),
            scored[(scored.training_set == name) & (scored.image == k)],
            f"experimental image {k}: detector trained on {SET_LABELS.get(name, name)}",
        )
    fig.tight_layout()
    save_figure(fig, png_out)


def pr_curve_figure(
    curve_path: str | os.PathLike, scores_path: str | os.PathLike, png_out: str | os.PathLike
) -> None:
    """Precision–recall curves over the detection threshold, the operating point marked, and
    F1 against the threshold."""
    use_style()
    curve = pd.read_csv(curve_path)
    scores = pd.read_csv(scores_path)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))
    for name, group in curve.groupby("training_set", sort=False):
        label = SET_LABELS.get(name, name)
        (line,) = ax.plot(group["recall"], group["precision"], marker=".", label=label)
        op = scores[scores["training_set"] == name].iloc[0]
        ax.plot(op["recall"], op["precision"], "o", ms=9, mfc="none", color=line.get_color())
        bx.plot(group["threshold"], group["f1"], marker=".", color=line.get_color(), label=label)
        bx.axvline(op["threshold"], color=line.get_color(), lw=0.8, ls="--")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_title("PR curve over the threshold (○ = operating point)", fontsize=10)
    ax.legend(fontsize=8)
    bx.set_xlabel("probability threshold")
    bx.set_ylabel("F1")
    bx.set_ylim(0, 1.02)
    bx.set_title("F1 against the threshold (-- = each operating point)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, png_out)


def stem_training_figure(
    cyclegan_log: str | os.PathLike,
    detector_logs: dict[str, str | os.PathLike],
    png_out: str | os.PathLike,
) -> None:
    """CycleGAN losses per step and the detectors' loss per epoch."""
    use_style()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 3.8))
    log = pd.read_csv(cyclegan_log)
    names = {
        "gan_h": "GAN → exp",
        "gan_l": "GAN → sim",
        "fourier": "Fourier GANs",
        "cycle": "cycle L1",
        "identity": "identity L1",
        "loss_d": "discriminators",
    }
    for column, label in names.items():
        if column in log:
            ax.plot(log["step"], log[column], label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("CycleGAN sim ↔ exp", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    for name, path in detector_logs.items():
        d = pd.read_csv(path)
        bx.plot(d["step"], d["loss"], marker=".", label=SET_LABELS.get(name, name))
    bx.set_xlabel("epoch")
    bx.set_ylabel("loss (heatmap BCE + type CE)")
    bx.set_yscale("log")
    bx.set_title("vacancy detector", fontsize=10)
    bx.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, png_out)


ROBUSTNESS_LABELS = {
    "dose": "dose (counts / px)",
    "source_blur": "source size (Å FWHM)",
    "row_jitter": "row jitter (px rms)",
    "background": "background (rms / signal)",
    "contamination": "contamination (coverage)",
}


def robustness_figure(
    table: str | os.PathLike, png_out: str | os.PathLike, target: float = 0.7
) -> pd.DataFrame:
    """F1 (solid) and recall (dashed) of each detector against each experimental condition,
    one panel per condition, from the robustness stage's table; the study's own setting is
    the dotted vertical line, the F1 target the grey horizontal one."""
    use_style()
    frame = pd.read_csv(table)
    conditions = list(dict.fromkeys(frame["condition"]))
    fig, axes = plt.subplots(1, len(conditions), figsize=(3.6 * len(conditions), 3.6),
                             constrained_layout=True, squeeze=False)  # fmt: skip
    for ax, condition in zip(axes[0], conditions):
        part = frame[frame["condition"] == condition].sort_values("value")
        for k, (name, g) in enumerate(part.groupby("training_set", sort=False)):
            ax.plot(g["value"], g["f1"], "o-", color=f"C{k}", label=f"{name} F1")
            ax.plot(g["value"], g["recall"], "--", color=f"C{k}", alpha=0.7, lw=1)
        default = part[part["default"]]["value"]
        if len(default):
            ax.axvline(float(default.iloc[0]), color="0.3", ls=":", lw=1)
        ax.axhline(target, color="0.6", lw=1)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(ROBUSTNESS_LABELS.get(condition, condition))
        ax.set_ylabel("F1 (solid), recall (dashed)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=9)
    fig.suptitle("Vacancy detection as the microscope's day changes (one condition at a time)")
    save_figure(fig, png_out)
    return frame


def stem_figures(inputs: dict[str, str], outputs: dict[str, str]) -> None:
    """All figures of the STEM study from the rule's named inputs and outputs."""
    table1_figure(inputs["scores"], outputs["table"])
    examples_figure(
        inputs["sim"],
        inputs["noisy"],
        inputs["cyclegan"],
        inputs["exp"],
        inputs["exp_table"],
        inputs["points"],
        outputs["examples"],
    )
    pr_curve_figure(inputs["curve"], inputs["scores"], outputs["pr_curve"])
    stem_training_figure(
        inputs["cyclegan_log"],
        {k.removeprefix("log_"): v for k, v in inputs.items() if k.startswith("log_")},
        outputs["training"],
    )
