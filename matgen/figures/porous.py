"""Figures of the porous-rock study."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.threshold import binarise_pores
from ..io import save_table
from ..metrics.morphology import normalised_autocovariance
from . import plt, save_figure, use_style

DESCRIPTORS = {
    "porosity": "porosity φ",
    "specific_surface_area": "specific surface area L_A (1/{unit})",
    "correlation_length": "correlation length λ ({unit})",
}


def morphology_figure(datasets: dict[str, dict[str, str | os.PathLike]],
                      png_out: str | os.PathLike, csv_out: str | os.PathLike,
                      unit: str = "µm", n_examples: int = 4) -> pd.DataFrame:
    """Distributions of porosity, specific surface area, λ and S2(r) per data set.

    ``datasets`` maps a label (e.g. ``"SEM (real)"``) to paths ``table`` (morphology CSV),
    ``curves`` (S2 NPZ) and ``tiles`` (tile stack, for example tiles with their pore outlines).
    Top row: example tiles of the first data set. Then histograms of the three scalar
    descriptors and S2(r) with its mean and the exp(−r/λ) fit of the mean curve.
    The CSV holds the summary statistics (mean, std, quartiles) of each descriptor per data set
    and the fitted λ of the mean curve.
    """
    use_style()
    tables = {k: pd.read_csv(v["table"]) for k, v in datasets.items()}
    curves = {k: np.load(v["curves"]) for k, v in datasets.items()}
    fig = plt.figure(figsize=(13, 8.2), constrained_layout=True)
    grid = fig.add_gridspec(2, 1, height_ratios=[1, 1.5])
    top = grid[0].subgridspec(1, n_examples)
    bottom = grid[1].subgridspec(1, 4)

    first = next(iter(datasets))
    tiles = np.load(datasets[first]["tiles"], mmap_mode="r")
    picks = np.linspace(0, len(tiles) - 1, n_examples).astype(int)
    threshold = float(tables[first]["threshold"].iloc[0])
    for j, t in enumerate(picks):
        ax = fig.add_subplot(top[0, j])
        tile = np.asarray(tiles[t, 0], dtype=np.float32)
        pores, _ = binarise_pores(tile, threshold, smooth_sigma=1.0)
        ax.imshow(tile, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.contour(pores, levels=[0.5], colors=["#e8710a"], linewidths=0.8)
        row = tables[first].iloc[t]
        ax.set_title(f"{first} tile {t}\nφ={row.porosity:.3f}, "
                     f"λ={row.correlation_length:.2f} {unit}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])

    summary = []
    for j, (column, label) in enumerate(DESCRIPTORS.items()):
        ax = fig.add_subplot(bottom[0, j])
        values = {k: t[column].dropna().to_numpy() for k, t in tables.items()}
        edges = np.histogram_bin_edges(np.concatenate(list(values.values())), bins=20)
        for name, v in values.items():
            ax.hist(v, bins=edges, alpha=0.55, density=True, label=f"{name} (n={len(v)})")
            summary.append({"dataset": name, "descriptor": column, "n": len(v),
                            "mean": v.mean(), "std": v.std(ddof=1) if len(v) > 1 else 0.0,
                            "q25": np.quantile(v, 0.25), "median": np.median(v),
                            "q75": np.quantile(v, 0.75)})
        ax.set_xlabel(label.format(unit=unit))
        ax.set_ylabel("density")
        if j == 0:
            ax.legend(fontsize=8)

    ax = fig.add_subplot(bottom[0, 3])
    for k, (name, c) in enumerate(curves.items()):
        colour = f"C{k}"
        r = c["r_unit"]
        f = normalised_autocovariance(c["s2"], c["porosity"])
        for curve in f[:: max(1, len(f) // 25)]:
            ax.plot(r, curve, color=colour, alpha=0.12, lw=0.7)
        mean = np.nanmean(f, axis=0)
        lam = float(np.nanmean(tables[name]["correlation_length"]))
        ax.plot(r, mean, color=colour, lw=2, label=f"{name} mean")
        ax.plot(r, np.exp(-r / lam), color=colour, lw=1.5, ls="--",
                label=f"exp(−r/λ̄), λ̄={lam:.2f} {unit}")
        summary.append({"dataset": name, "descriptor": "s2_normalised_at_lambda", "n": len(f),
                        "mean": float(np.interp(lam, r, mean)), "std": np.nan, "q25": np.nan,
                        "median": np.nan, "q75": np.nan})
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xlim(0, float(r[-1]))
    ax.set_ylim(-0.15, 1.02)
    ax.set_xlabel(f"r ({unit})")
    ax.set_ylabel("(S2(r) − φ²) / (φ − φ²)")
    ax.legend(fontsize=8)
    fig.suptitle("Pore morphology per tile: distributions and two-point correlation")
    table = pd.DataFrame(summary)
    save_table(csv_out, table)
    save_figure(fig, png_out)
    return table
