"""Figures of the segmentation study: generated image + mask pairs beside real ones, mIoU and
customised mIoU against the synthetic share (error bars over seeds), and a table of all mixes."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from ..data.ingest import load_stack
from . import draw_table, plt, save_figure, show_image, use_style

# colour per class: matrix light grey, second phase orange, pores/inclusions blue
CLASS_COLOURS = np.array(
    [
        [0.85, 0.85, 0.85],
        [0.90, 0.55, 0.10],
        [0.15, 0.35, 0.80],
        [0.30, 0.70, 0.30],
        [0.60, 0.20, 0.60],
    ]
)


def _show_mask(ax: "plt.Axes", mask: np.ndarray, title: str = "") -> None:
    rgb = CLASS_COLOURS[np.clip(mask.astype(int), 0, len(CLASS_COLOURS) - 1)]
    rgb[mask == 255] = 0  # unlabelled: black
    ax.imshow(rgb, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def _fraction_panel(ax: "plt.Axes", checks: pd.Series, classes: list[str]) -> None:
    """Area fraction of each phase, real annotated masks against generated ones."""
    x = np.arange(len(classes))
    for offset, name, colour, label in ((-0.2, "real", "0.6", "real masks"),
                                        (0.2, "synthetic", "C1", "generated")):  # fmt: skip
        values = [checks.get(f"{name}_fraction_{c}", np.nan) for c in classes]
        ax.bar(x + offset, values, 0.4, color=colour, label=label)
    ax.set_xticks(x, [c.replace("_", " ") for c in classes], fontsize=7)
    ax.set_ylabel("area fraction")
    gap = checks.get("phase_fraction_max_abs_difference", np.nan)
    # thin, branched patches of the right area: the interface per phase area shows them
    shape = checks.get("phase_interface_per_area_max_abs_ratio_minus_1", np.nan)
    ax.set_title(f"phase fractions, largest |difference| {gap:.3f}\n"
                 f"interface per phase area / real − 1, largest |·| {shape:.2f}",
                 fontsize=8)  # fmt: skip
    ax.legend(fontsize=7, frameon=False)


def _realism_panels(axes: list["plt.Axes"], curves: Any, checks: pd.Series) -> None:
    """Bottom row of the pairs figure: power spectra, pore aspect ratio and pore size, real
    against generated, with the checks' values."""
    f = curves["frequency"]
    ax = axes[0]
    ax.loglog(f, curves["real_power"], color="0.2", label="real crops")
    ax.loglog(f, curves["synthetic_power"], color="C1", label="generated")
    ax.xaxis.set_minor_formatter(plt.NullFormatter())  # minor labels overlap on one decade
    ax.set_xlabel("frequency (cycles / px)")
    ax.set_ylabel("power")
    ax.set_title(
        "power spectrum, max |log10 ratio| "
        f"{checks.get('power_spectrum_max_abs_log10_ratio', np.nan):.2f}",
        fontsize=8,
    )
    ax.legend(fontsize=7, frameon=False)
    aspect = checks.get("pore_aspect_ratio_generated_over_real", np.nan)
    for ax, key, label, check in (
        (axes[1], "aspect_ratio", "pore aspect ratio (minor / major axis)",
         f"generated / real mean {aspect:.2f}"),
        (axes[2], "equivalent_diameter", "pore equivalent diameter (px)",
         f"KS {checks.get('pore_equivalent_diameter_ks', np.nan):.2f}"),
    ):  # fmt: skip
        real, gen = curves[f"real_pore_{key}"], curves[f"generated_pore_{key}"]
        both = np.concatenate([real, gen])
        bins = np.linspace(both.min(), both.max(), 16) if both.size else 10
        ax.hist(real, bins, density=True, histtype="step", color="0.2", label="real")
        ax.hist(gen, bins, density=True, histtype="step", color="C1", label="generated")
        ax.set_xlabel(label)
        ax.set_title(check, fontsize=8)
        ax.legend(fontsize=7, frameon=False)


def pairs_figure(
    real_images: str | os.PathLike,
    real_masks: str | os.PathLike,
    synthetic_images: str | os.PathLike,
    synthetic_masks: str | os.PathLike,
    checks_path: str | os.PathLike,
    curves_path: str | os.PathLike,
    classes: list[str],
    png_out: str | os.PathLike,
    n: int = 6,
    crop: int = 64,
) -> None:
    """Rows: real images (crops of the tile size of the generated pairs), their annotated
    masks, generated images, generated masks; below, the realism checks (spectra, pore shapes,
    phase fractions)."""
    use_style()
    ri, rm = load_stack(real_images), np.load(real_masks)
    si, sm = load_stack(synthetic_images), np.load(synthetic_masks)
    checks = pd.read_csv(checks_path).set_index("check")["value"]
    crop = min(crop, ri.shape[-1], si.shape[-1])
    fig = plt.figure(figsize=(1.9 * n, 10.8))
    grid = fig.add_gridspec(5, n, height_ratios=[1, 1, 1, 1, 1.25])
    axes = np.array([[fig.add_subplot(grid[i, j]) for j in range(n)] for i in range(4)])
    for j in range(n):
        k = j % len(ri)
        y = (j // len(ri)) * crop % max(1, ri.shape[-2] - crop + 1)
        show_image(
            axes[0, j],
            np.asarray(ri[k, 0, y : y + crop, :crop], np.float32),
            "real" if j == 0 else "",
        )
        _show_mask(axes[1, j], rm[k, y : y + crop, :crop], "annotated mask" if j == 0 else "")
        show_image(axes[2, j], np.asarray(si[j, 0], np.float32), "generated" if j == 0 else "")
        _show_mask(axes[3, j], sm[j], "generated mask" if j == 0 else "")
    row = grid[4, :].subgridspec(1, 4, wspace=0.35)
    bottom = [fig.add_subplot(row[0, i]) for i in range(4)]
    with np.load(curves_path) as curves:
        _realism_panels(bottom[:3], curves, checks)
    _fraction_panel(bottom[3], checks, classes)
    handles = [plt.Rectangle((0, 0), 1, 1, color=CLASS_COLOURS[i]) for i in range(len(classes))]
    fig.legend(handles, classes, loc="upper center", ncol=len(classes), fontsize=9,
               frameon=False, bbox_to_anchor=(0.5, 0.965))  # fmt: skip
    fig.suptitle(
        "VQ-VAE + PixelCNN image/mask pairs — reconstruction mask mIoU "
        f"{checks.get('vqvae_reconstruction_mask_miou', np.nan):.3f} (target 0.9), "
        "generated masks vs a real-image U-Net on generated images mIoU "
        f"{checks.get('generated_mask_image_agreement_miou', np.nan):.3f} (target 0.7)",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    save_figure(fig, png_out)


def _field_of_view(summary: pd.DataFrame) -> int:
    """The px side of the fields the mIoUs were averaged over (0: whole images)."""
    return int(summary["field_of_view"].iloc[0]) if "field_of_view" in summary else 0


def miou_figure(summary_path: str | os.PathLike, png_out: str | os.PathLike) -> None:
    """mIoU (left) and the customised mIoU (right) against the synthetic share of the training
    pixels, one line per number of real images, mean ± standard deviation over seeds."""
    use_style()
    summary = pd.read_csv(summary_path)
    exact = summary.get("exact_masks", pd.Series(False, index=summary.index)).astype(bool)
    epochs = summary.get("epochs", pd.Series(0, index=summary.index)).fillna(0).astype(int)
    # one colour per real count; a real-only mix at another budget than the study's (its
    # `epochs`) is a hollow diamond of that colour, a little to the left of its line
    common = epochs.mode().iloc[0]
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colours = {r: cycle[i % len(cycle)] for i, r in enumerate(sorted(summary["real"].unique()))}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, metric, title in zip(
        axes,
        ("miou", "miou_present"),
        ("mIoU (classes in prediction ∪ truth)", "customised mIoU (classes in truth only)"),
    ):
        for (real, perfect, n_epochs), group in summary.groupby([summary["real"], exact, epochs]):
            group = group.sort_values("synthetic_share")
            label = f"{real} real images" if real else "synthetic only"
            other = bool(n_epochs) and n_epochs != common
            label += f", {n_epochs} epochs" if other else ""
            ax.errorbar(
                group["synthetic_share"] - (0.02 if other else 0.0),
                group[f"{metric}_mean"],
                yerr=group[f"{metric}_std"],
                color=colours[real],
                marker="*" if perfect else "D" if other else "o",
                markersize=10 if perfect else 6,
                markerfacecolor="none" if other else colours[real],
                capsize=3,
                label=label + (", exact masks" if perfect else ""),
            )
        ax.set_xlabel("synthetic share of training pixels")
        ax.set_title(title, fontsize=10)
        ax.set_xlim(-0.05, 1.05)
    fov = _field_of_view(summary)
    where = f"per {fov}-px field of view" if fov else "per image"
    axes[0].set_ylabel(f"held-out real images, {where}")
    axes[0].legend(fontsize=8)
    if np.allclose(summary["miou_mean"], summary["miou_present_mean"]):
        fig.text(
            0.5,
            -0.02,
            "The two scores coincide here: every scored field contains every "
            "class or no absent class is predicted.",
            ha="center",
            fontsize=8,
        )
    fig.tight_layout()
    save_figure(fig, png_out)


def runs_table_figure(summary_path: str | os.PathLike, png_out: str | os.PathLike) -> None:
    """Every mix: real images, synthetic real-image equivalents, share, U-Net epochs (where the
    table has them), both mIoUs (mean ± sd)."""
    use_style()
    s = pd.read_csv(summary_path)
    budgets = "epochs" in s
    cells = [
        [
            r.mix,
            str(int(r.real)),
            f"{r.synthetic_images:g}",
            f"{r.synthetic_share:.2f}",
            *([f"{r.epochs:g}"] if budgets else []),
            f"{r.miou_mean:.3f} ± {r.miou_std:.3f}",
            f"{r.miou_present_mean:.3f} ± {r.miou_present_std:.3f}",
            str(int(r.n_seeds)),
        ]
        for r in s.itertuples()
    ]
    fig, ax = plt.subplots(figsize=(11, 0.42 * len(cells) + 1.2))
    header = ["mix", "real", "synthetic\n(image equiv.)", "synthetic\nshare"]
    header += ["U-Net\nepochs"] * budgets + ["mIoU", "customised\nmIoU", "seeds"]
    draw_table(ax, cells, header, fontsize=9)
    fov = _field_of_view(s)
    ax.set_title(
        "U-Nets on real/synthetic mixes, scored on held-out real images only"
        + (f" (mIoUs averaged over {fov}-px fields of view)" if fov else ""),
        fontsize=10,
    )
    save_figure(fig, png_out)


def segmentation_figures(
    inputs: dict[str, Any], outputs: dict[str, str], *, classes: list[str], split: dict[str, int]
) -> None:
    """All figures of the segmentation study from the rule's named inputs and outputs."""
    pairs_figure(
        inputs["images"],
        inputs["masks"],
        inputs["synthetic_images"],
        inputs["synthetic_masks"],
        inputs["checks"],
        inputs["curves"],
        classes,
        outputs["pairs"],
    )
    miou_figure(inputs["summary"], outputs["miou"])
    runs_table_figure(inputs["summary"], outputs["runs"])
