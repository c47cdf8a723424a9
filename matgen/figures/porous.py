"""Figures of the porous-rock study."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..io import save_table
from . import plt, save_figure, show_image, unit_label, use_style

DESCRIPTORS = {
    "porosity": "porosity φ",
    "specific_surface_area": "specific surface area L_A (1/{unit})",
    "correlation_length": "correlation length λ ({unit})",
}


def morphology_figure(
    datasets: dict[str, dict[str, str | os.PathLike]],
    png_out: str | os.PathLike,
    csv_out: str | os.PathLike,
    unit: str = "µm",
    annotations: dict[str, str] | None = None,
    title: str = "Pore morphology per tile: distributions and two-point correlation",
    spectra: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Distributions of porosity, specific surface area, λ and S2(r) per data set.

    ``datasets`` maps a label (e.g. ``"SEM (real)"``) to the morphology stage's files: ``table``
    (one row per tile), ``curves`` (NPZ: S2, normalised autocovariance and its mean, example
    tiles with their pores) and ``summary`` (per-descriptor statistics). Top row: the example
    tiles of the first data set with their pore outlines. Then histograms of the three scalar
    descriptors (``annotations``, descriptor → text, printed above them) and the normalised
    S2(r) with its mean and exp(−r/λ̄); with ``spectra`` (NPZ of the comparison stage), the
    radially averaged power spectra of the sets. The CSV beside is the data sets' summaries,
    stacked.
    """
    use_style()
    unit = unit_label(unit)
    tables = {k: pd.read_csv(v["table"]) for k, v in datasets.items()}
    curves = {k: np.load(v["curves"]) for k, v in datasets.items()}
    first = next(iter(datasets))
    examples = curves[first]
    curves_extra = np.load(spectra) if spectra is not None else None
    with_grey = curves_extra is not None and "pore_grey_density" in curves_extra
    panels = 4 + (curves_extra is not None) + with_grey
    fig = plt.figure(figsize=(3.3 * panels, 8.2), constrained_layout=True)
    grid = fig.add_gridspec(2, 1, height_ratios=[1, 1.5])
    top = grid[0].subgridspec(1, max(1, len(examples["example_tiles"])))
    bottom = grid[1].subgridspec(1, panels)
    for j, t in enumerate(examples["example_tiles"]):
        ax = fig.add_subplot(top[0, j])
        show_image(ax, examples["example_images"][j])
        ax.contour(examples["example_pores"][j], levels=[0.5], colors=["#e8710a"], linewidths=0.8)
        row = tables[first].iloc[int(t)]
        ax.set_title(
            f"{first} tile {t}\nφ={row.porosity:.3f}, λ={row.correlation_length:.2f} {unit}",
            fontsize=9,
        )

    for j, (column, label) in enumerate(DESCRIPTORS.items()):
        ax = fig.add_subplot(bottom[0, j])
        values = {k: t[column].dropna().to_numpy() for k, t in tables.items()}
        edges = np.histogram_bin_edges(np.concatenate(list(values.values())), bins=20)
        for name, v in values.items():
            ax.hist(v, bins=edges, alpha=0.55, density=True, label=f"{name} (n={len(v)})")
        ax.set_xlabel(label.format(unit=unit))
        if annotations and column in annotations:  # as the title: never on top of the bars
            ax.set_title(annotations[column], fontsize=7.5, family="monospace", loc="left")
        ax.set_ylabel("density")
        if j == 0:
            ax.legend(fontsize=8)

    ax = fig.add_subplot(bottom[0, 3])
    for k, (name, c) in enumerate(curves.items()):
        colour, r, f = f"C{k}", c["r_unit"], c["autocovariance"]
        for curve in f[:: max(1, len(f) // 25)]:
            ax.plot(r, curve, color=colour, alpha=0.12, lw=0.7)
        lam = float(np.nanmean(tables[name]["correlation_length"]))
        ax.plot(r, c["mean_autocovariance"], color=colour, lw=2, label=f"{name} mean")
        ax.plot(r, np.exp(-r / lam), color=colour, lw=1.5, ls="--",
                label=f"exp(−r/λ̄), λ̄={lam:.2f} {unit}")  # fmt: skip
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xlim(0, float(r[-1]))
    ax.set_ylim(-0.15, 1.02)
    ax.set_xlabel(f"r ({unit})")
    ax.set_ylabel("(S2(r) − φ²) / (φ − φ²)")
    ax.legend(fontsize=8)
    if curves_extra is not None:
        ax = fig.add_subplot(bottom[0, 4])
        _spectra_panel(ax, curves_extra)
        if annotations and "spectra" in annotations:
            ax.set_title(annotations["spectra"], fontsize=7.5, family="monospace", loc="left")
    if with_grey:
        ax = fig.add_subplot(bottom[0, 5])
        _pore_grey_panel(ax, curves_extra)
        if annotations and "pore_grey" in annotations:
            ax.set_title(annotations["pore_grey"], fontsize=7.5, family="monospace", loc="left")
    fig.suptitle(title)
    table = pd.concat(
        [pd.read_csv(v["summary"]).assign(dataset=k) for k, v in datasets.items()],
        ignore_index=True,
    )
    table = table[["dataset", *[c for c in table.columns if c != "dataset"]]]
    save_table(csv_out, table)
    save_figure(fig, png_out)
    return table


def stylegan2_samples_figure(
    panels: str | os.PathLike,
    table: str | os.PathLike,
    png_out: str | os.PathLike,
    csv_out: str | os.PathLike,
    layout: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Real vs StyleGAN2 tiles, drawn from the tiles and porosities of
    :func:`matgen.pipeline.porous.stylegan2_panels`: real tiles; different latents with
    constant noise; one latent with different noise draws (last panel: the per-pixel standard
    deviation); interpolation in W between the least and the most porous of 64 samples.
    φ is printed on every tile; the CSV beside is the panel table. ``layout`` (the panels'
    layout CSV): the share of the pore layout that z sets is printed beside the noise row."""
    use_style()
    images = np.load(panels)
    records = pd.read_csv(table)
    n_columns = int(records.column.max()) + 1
    share = (
        "" if layout is None else f"\nz sets {pd.read_csv(layout).latent_share[0]:.0%} of layout"
    )
    labels = {
        "real": "real SEM",
        "styles": "synthetic: different z,\nconstant noise",
        "noise": f"same z, different\nnoise (last: std){share}",
        "interpolation": "W interpolation\nbetween end members",
    }
    fig, axes = plt.subplots(
        len(labels),
        n_columns,
        figsize=(1.75 * n_columns + 1.2, 1.9 * len(labels)),
        constrained_layout=True,
        squeeze=False,
    )
    for r, name in enumerate(labels):
        rows = records[records.row == name].set_index("column")
        for c in range(n_columns):
            ax = axes[r, c]
            if c not in rows.index:
                ax.axis("off")
                continue
            phi = rows.porosity[c]
            if name == "noise" and c == n_columns - 1:
                ax.imshow(images[name][c], cmap="magma", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title("std over 16 noise draws", fontsize=8)
            else:
                title = (
                    f"t={c / (n_columns - 1):.1f}, φ={phi:.3f}"
                    if name == "interpolation"
                    else f"φ={phi:.3f}"
                )
                show_image(ax, images[name][c], title)
            if c == 0:
                ax.set_ylabel(labels[name], fontsize=9)
    fig.suptitle(
        "StyleGAN2-ADA: real and synthetic SEM tiles (φ = porosity at the real tiles' Otsu level)"
    )
    save_table(csv_out, records)
    save_figure(fig, png_out)
    return records


def _spectra_panel(ax: plt.Axes, spectra: Mapping[str, np.ndarray]) -> None:
    """Radially averaged power spectra, log-log: speckle and checkerboard lift the high
    frequencies, over-smooth samples drop them."""
    frequency = spectra["frequency"]
    for k, (name, power) in enumerate(zip(spectra["names"], spectra["power"])):
        ax.loglog(frequency, power, color=f"C{k}", lw=1.5, label=str(name))
    ax.set_xlabel("spatial frequency (cycles / px)")
    ax.set_ylabel("power (radial mean)")
    ax.xaxis.set_minor_formatter(plt.NullFormatter())  # log minor labels collide
    ax.legend(fontsize=8)


def _pore_grey_panel(ax: plt.Axes, curves: Mapping[str, np.ndarray]) -> None:
    """Grey levels ≥ 1 px inside the pores: real pores are flat and dark; hollow, rimmed or
    mottled synthetic pores spread to lighter grey."""
    edges = curves["pore_grey_edges"]
    centres = 0.5 * (edges[1:] + edges[:-1])
    for k, (name, density) in enumerate(
        zip(curves["pore_grey_names"], curves["pore_grey_density"])
    ):
        ax.step(centres, density, where="mid", color=f"C{k}", lw=1.5, label=str(name))
    ax.set_xlim(0, 1)
    ax.set_xlabel("grey level inside pores (≥ 1 px from the edge)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)


def porous_comparison_figure(
    datasets: dict[str, dict[str, str | os.PathLike]],
    real: str,
    distances: str | os.PathLike,
    png_out: str | os.PathLike,
    csv_out: str | os.PathLike,
    unit: str = "µm",
    spectra: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Porosity, specific surface area, λ, S2(r), power spectra and pore-interior grey levels:
    real vs every synthetic set (histograms with the KS statistic and Wasserstein distance of
    each synthetic set, the spectra's largest |log10 ratio| and the pore-grey Wasserstein
    distance with the pore rims' difference to real and the bright specks beside the pores as a
    multiple of real's, the share of tiles holding a crack and the pores' mean circularity
    beside the surface area's, read from ``distances``, the table of
    :func:`matgen.pipeline.porous.compare_morphology`; spectra and grey-level histograms from
    its NPZ)."""
    table = pd.read_csv(distances)
    notes = {}
    cracks = table[table.descriptor == "cracks"]
    circularity = table[table.descriptor == "pore_circularity"]
    for d in DESCRIPTORS:
        rows = list(table[table.descriptor == d].itertuples())
        width = max(len(r.dataset) for r in rows) if rows else 0
        lines = [
            f"{r.dataset:<{width}} KS {r.ks_statistic:.2f} W {r.wasserstein:.3g}" for r in rows
        ]
        if d == "specific_surface_area" and len(cracks):  # the thin pores the area counts
            lines.append(f"tiles holding a crack: real {cracks.mean_real.iloc[0]:.0%}")
            lines += [f"{r.dataset:<{width}} {r.mean_synthetic:.1%}" for r in cracks.itertuples()]
        if d == "specific_surface_area" and len(circularity):  # smooth outlines: less area
            lines.append(f"pore circularity: real {circularity.mean_real.iloc[0]:.3f}")
            lines += [f"{r.dataset:<{width}} {r.mean_synthetic:.3f} (×{r.mean_ratio:.2f})"
                      for r in circularity.itertuples()]  # fmt: skip
        notes[d] = "\n".join(lines)
    rows = table[table.descriptor == "power_spectrum"]
    if spectra is not None and len(rows):
        width = max(len(r.dataset) for r in rows.itertuples())
        notes["spectra"] = "\n".join(
            f"{r.dataset:<{width}} max|Δlog10 P| {r.max_abs_log_ratio:.2f}"
            for r in rows.itertuples()
        )
    rows = table[table.descriptor == "pore_grey"]
    if len(rows):
        width = max(len(r.dataset) for r in rows.itertuples())
        rims = table[table.descriptor == "pore_rim"].set_index("dataset")["mean_difference"]
        specks = table[table.descriptor == "pore_rim_specks"].set_index("dataset")["mean_ratio"]
        notes["pore_grey"] = "\n".join(
            f"{r.dataset:<{width}} W {r.wasserstein:.3f} mean {r.mean_synthetic:.2f}"
            + (f" rim Δ {rims[r.dataset]:+.3f}" if r.dataset in rims else "")
            + (f" specks ×{specks[r.dataset]:.1f}" if r.dataset in specks else "")
            for r in rows.itertuples()
        )
    return morphology_figure(
        datasets,
        png_out,
        csv_out,
        unit=unit,
        spectra=spectra,
        annotations=notes,
        title=f"Morphology: {real} vs synthetic (KS statistic, Wasserstein "
        f"distance W in the descriptor's unit)",
    )


def translation_figure(
    microct_tiles: str | os.PathLike,
    bicubic_tiles: str | os.PathLike,
    translated_tiles: Mapping[str, str | os.PathLike],
    truth_tiles: str | os.PathLike,
    per_tile: str | os.PathLike,
    summary: str | os.PathLike,
    png_out: str | os.PathLike,
    csv_out: str | os.PathLike,
    n_examples: int = 4,
    unit: str = "µm",
) -> pd.DataFrame:
    """Micro-CT → SEM translation scored against the true high-resolution slice.

    Top: for ``n_examples`` tiles, the micro-CT input, bicubic upsampling, each CycleGAN's G_LH
    (``translated_tiles``: method → tiles, e.g. ``cyclegan_real_only``, ``cyclegan``) and the
    truth. Bottom: porosity (legend: Pearson r and slope; the micro-CT's own reading where the
    summary has it) and λ of each method against the truth (identity line dashed) and the
    distribution of the per-tile S2 error. Everything comes from the files of
    :func:`matgen.pipeline.porous.translation_error`; the CSV beside is its per-method summary.
    """
    use_style()
    unit = unit_label(unit)
    ct = np.load(microct_tiles, mmap_mode="r")
    trans = {m: np.load(p, mmap_mode="r") for m, p in translated_tiles.items()}
    truth = np.load(truth_tiles, mmap_mode="r")
    errors = pd.read_csv(per_tile)
    scale = truth.shape[-1] // ct.shape[-1]
    picks = np.linspace(0, len(ct) - 1, n_examples).astype(int)
    methods = ["bicubic", *trans]
    names = {"bicubic": f"bicubic ×{scale}", "cyclegan": "CycleGAN (real + StyleGAN2)",
             "cyclegan_real_only": "CycleGAN (real SEM only)"}  # fmt: skip
    rows = len(methods) + 2
    fig = plt.figure(figsize=(12, 2.4 * rows + 3), constrained_layout=True)
    grid = fig.add_gridspec(2, 1, height_ratios=[0.48 * rows, 1])
    top = grid[0].subgridspec(rows, n_examples)
    tiles = {"bicubic": np.load(bicubic_tiles, mmap_mode="r"), **trans}
    for j, t in enumerate(picks):
        tile_rows = errors[errors.tile == errors.tile.unique()[t]]
        ax = fig.add_subplot(top[0, j])
        show_image(ax, np.kron(np.asarray(ct[t, 0], np.float32), np.ones((scale, scale))),
                   f"tile {t}")  # fmt: skip
        if j == 0:
            ax.set_ylabel("micro-CT input", fontsize=9)
        for i, method in enumerate(methods, start=1):
            row = tile_rows[tile_rows.method == method]
            ax = fig.add_subplot(top[i, j])
            title = f"φ={row.porosity.iloc[0]:.3f}" if len(row) else ""
            show_image(ax, np.asarray(tiles[method][t, 0], np.float32), title)
            if j == 0:
                ax.set_ylabel(names.get(method, method), fontsize=9)
        ax = fig.add_subplot(top[rows - 1, j])
        title = f"φ={tile_rows.porosity_truth.iloc[0]:.3f}" if len(tile_rows) else ""
        show_image(ax, np.asarray(truth[t, 0], np.float32), title)
        if j == 0:
            ax.set_ylabel("true SEM slice", fontsize=9)
    bottom = grid[1].subgridspec(1, 3)
    table = pd.read_csv(summary)
    fit = table.set_index("method")
    for k, (column, label) in enumerate(
        (("porosity", "porosity φ"), ("correlation_length", f"λ ({unit})"))
    ):
        ax = fig.add_subplot(bottom[0, k])
        lo = min(errors[column].min(), errors[f"{column}_truth"].min())
        hi = max(errors[column].max(), errors[f"{column}_truth"].max())
        for m, (method, g) in enumerate(errors.groupby("method", sort=False)):
            name = method
            if column == "porosity" and "porosity_slope" in fit.columns and method in fit.index:
                # slope < 1: the tiles' porosity pulled towards one value, which r cannot show
                f = fit.loc[method]
                name += f" (r {f.porosity_pearson_r:.2f}, slope {f.porosity_slope:.2f})"
            ax.scatter(g[f"{column}_truth"], g[column], s=14, alpha=0.7, color=f"C{m}", label=name)
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel(f"truth {label}")
        ax.set_ylabel(f"translated {label}")
        title = None
        if column == "porosity" and "microct_reading" in fit.index:
            # what the input itself says about each tile's porosity: the ceiling to compare with
            f = fit.loc["microct_reading"]
            title = f"micro-CT's own reading: r {f.porosity_pearson_r:.2f}, "
            title += f"slope {f.porosity_slope:.2f}"
        ax.legend(fontsize=8, title=title, title_fontsize=8)
    ax = fig.add_subplot(bottom[0, 2])
    methods = list(errors.method.unique())
    ax.boxplot([errors[errors.method == m].s2_rmse.dropna() for m in methods])
    ax.set_xticks(range(1, len(methods) + 1), methods)
    ax.set_ylabel("RMS error of normalised S2(r)")
    fig.suptitle("Micro-CT → SEM: morphology against the true high-resolution slice")
    save_table(csv_out, table)
    save_figure(fig, png_out)
    return table


def training_curves_figure(
    logs: dict[str, str | os.PathLike],
    png_out: str | os.PathLike,
    csv_out: str | os.PathLike,
    ada_target: float = 0.6,
) -> pd.DataFrame:
    """Training curves of the study's models from their CSV logs.

    ``logs`` maps a model name (``stylegan2``, ``cyclegan``, ``cyclegan_real_only``) to its
    log. StyleGAN2: D and G losses, R1 and path-length penalties, ADA p and r_t (its configured
    ``ada_target`` dashed), and where logged its grey-level W1 term, the EMA tiles'
    porosity against the real tiles' (dashed) and their mismatch to the real tiles with the
    kept snapshot starred; each CycleGAN: adversarial, cycle,
    forward-model and grey-histogram losses (those switched on). The CSV beside is all logs
    stacked (long format).
    """
    use_style()
    frames = {k: pd.read_csv(v) for k, v in logs.items()}
    panels = []
    if "stylegan2" in frames:
        panels += [
            ("stylegan2", "kimg", ["loss_d", "loss_g"], "logistic loss"),
            ("stylegan2", "kimg", ["r1", "pl_penalty"], "regulariser"),
            ("stylegan2", "kimg", ["ada_p", "ada_rt"], "ADA p, r_t"),
        ]
        if "grey_histogram" in frames["stylegan2"]:
            panels += [("stylegan2", "kimg", ["grey_histogram"], "grey-level W1 (-1..1 units)")]
        if "ema_porosity" in frames["stylegan2"]:
            panels += [("stylegan2", "kimg", ["ema_porosity"], "porosity of EMA tiles")]
        if "snapshot_mismatch" in frames["stylegan2"]:
            panels += [("stylegan2", "kimg", ["snapshot_mismatch"], "mismatch (target widths)")]
    for model in ("cyclegan_real_only", "cyclegan"):
        if model in frames:
            terms = ("gan_h", "gan_l", "cycle", "forward", "grey_histogram")
            columns = [c for c in terms if c in frames[model] and frames[model][c].any()]
            panels += [(model, "step", columns, "loss")]
    ncols = min(4, len(panels))  # rows of four: readable on a page
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4 * ncols, 3.4 * nrows), constrained_layout=True, squeeze=False
    )
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (model, x, columns, ylabel) in zip(axes.flat, panels):
        frame = frames[model]
        for column in columns:
            kept = frame[[x, column]].dropna()  # the monitor measures at some rows only
            ax.plot(
                kept[x], kept[column], label=column, lw=1.2, marker="o" if len(kept) < 60 else ""
            )
        if "ema_porosity" in columns:
            ax.axhline(frame.real_porosity.iloc[0], color="0.4", ls="--", lw=0.8,
                       label="real tiles")  # fmt: skip
        if "snapshot_mismatch" in columns:  # the model file keeps the lowest
            kept = frame[[x, "snapshot_mismatch"]].dropna()
            best = kept.loc[kept.snapshot_mismatch.idxmin()]
            ax.plot(best[x], best.snapshot_mismatch, "*", ms=13, color="C3",
                    label=f"kept: {best[x]:.1f} kimg")  # fmt: skip
        if "ada_rt" in columns:
            ax.axhline(ada_target, color="0.4", ls="--", lw=0.8, label="r_t target")
            ax.set_ylim(-1.05, 1.05)
        if columns == ["r1", "pl_penalty"]:
            ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_title(model, fontsize=10)
        ax.set_xlabel(x)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    fig.suptitle("Training curves")
    stacked = pd.concat([f.assign(model=k) for k, f in frames.items()], ignore_index=True)
    save_table(csv_out, stacked)
    save_figure(fig, png_out)
    return stacked
