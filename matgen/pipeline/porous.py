"""Stages of the porous study after training: sample synthetic SEM tiles, translate micro-CT
tiles, score the translation against the true high-resolution slices, compare morphologies."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.stats import wasserstein_distance

from ..data.ingest import load_stack
from ..data.threshold import binarise_pores
from ..errors import InputError
from ..io import atomic_path, save_npy, save_npz, save_table
from ..metrics.distributions import distribution_distances
from ..metrics.morphology import (
    bright_rim_share,
    crack_share,
    far_solid_level,
    normalised_autocovariance,
    particle_shapes,
)
from ..metrics.regression import fit_to_truth
from ..metrics.spectra import detector_noise_sd, spectrum_log_ratio
from ..util import select_device
from .morphology import DESCRIPTORS, TileSetDescription, describe_morphology, describe_tile_set

if TYPE_CHECKING:  # torch is imported where it is used: the CLI starts fast
    import torch


def _write_stack(
    path: str | os.PathLike, shape: tuple[int, ...], fill: "callable[[np.ndarray], None]"
) -> None:
    """Write a float16 .npy stack chunk by chunk through a memory map, atomically, so 200 k
    tiles never need to sit in memory at once."""
    with atomic_path(path, suffix=".npy") as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=shape)
        fill(out)
        out.flush()
        del out


def sample_stylegan2(
    checkpoint: str | os.PathLike,
    real_table_path: str | os.PathLike,
    tiles_out: str | os.PathLike,
    table_out: str | os.PathLike,
    *,
    n: int,
    seed: int = 0,
    batch_size: int = 64,
    truncation_psi: float = 1.0,
    device: str = "auto",
) -> pd.DataFrame:
    """Sample ``n`` tiles from the EMA generator, tile i from seed ``seed + i``: its latent z
    and its per-pixel noise maps are both drawn from that seed (``generate``'s ``seeded``
    noise), so tiles differ in their stochastic detail and any tile can be regenerated from
    the table alone.

    Writes a float16 stack (n, C, R, R) in [0, 1] and a table (tile, sample, seed, y, x, size,
    pixel_size — the real tiles' pixel size, since the generator learnt that sampling).
    """
    from ..inference.stylegan2 import generate, load_stylegan2
    from ..util import progress

    if n < 1:
        raise InputError(f"sample: n must be at least 1, got {n}")
    G = load_stylegan2(checkpoint, str(select_device(device)))
    real = pd.read_csv(real_table_path)
    seeds = seed + np.arange(n, dtype=np.int64)
    channels = G.img_channels

    def fill(out: np.ndarray) -> None:
        starts = range(0, n, batch_size)
        for s in progress(starts, desc="sampling StyleGAN2", total=len(starts)):
            out[s : s + batch_size] = generate(
                G, seeds[s : s + batch_size], batch_size, truncation_psi
            ).astype(np.float16)

    _write_stack(tiles_out, (n, channels, G.resolution, G.resolution), fill)
    table = pd.DataFrame(
        {
            "tile": np.arange(n),
            "sample": "stylegan2",
            "seed": seeds,
            "y": 0,
            "x": 0,
            "size": G.resolution,
            "pixel_size": float(real["pixel_size"].iloc[0]),
        }
    )
    save_table(table_out, table)
    return table


def translate_microct(
    checkpoint: str | os.PathLike,
    tiles_path: str | os.PathLike,
    table_path: str | os.PathLike,
    tiles_out: str | os.PathLike,
    table_out: str | os.PathLike,
    *,
    batch_size: int = 64,
    device: str = "auto",
) -> pd.DataFrame:
    """Apply G_LH to every micro-CT tile: ``scale``-times larger SEM-like tiles.

    The table keeps each tile's source and position, in the fine pixels of the output
    (y, x, size × scale; pixel size ÷ scale).
    """
    from ..inference.cyclegan import load_cyclegan_generator, translate
    from ..util import progress

    G = load_cyclegan_generator(checkpoint, "G_LH", str(select_device(device)))
    tiles = load_stack(tiles_path)
    table = pd.read_csv(table_path)
    if len(table) != len(tiles):
        raise InputError(f"{table_path}: {len(table)} rows for {len(tiles)} tiles")
    scale = int(G.scale)
    shape = (len(tiles), tiles.shape[1], tiles.shape[2] * scale, tiles.shape[3] * scale)

    def fill(out: np.ndarray) -> None:
        chunk = max(batch_size * 8, 1)
        starts = range(0, len(tiles), chunk)
        for s in progress(starts, desc="translating micro-CT", total=len(starts)):
            out[s : s + chunk] = translate(G, tiles[s : s + chunk], batch_size).astype(np.float16)

    _write_stack(tiles_out, shape, fill)
    table = table.copy()
    for column in ("y", "x", "size"):
        table[column] = table[column] * scale
    table["pixel_size"] = table["pixel_size"] / scale
    save_table(table_out, table)
    return table


def translate_image(generator: "torch.nn.Module", image: np.ndarray, tile: int) -> np.ndarray:
    """Translate a whole 2-D image in [0, 1] tile by tile (tiles of the training size, the last
    row/column shifted inwards so the image is covered exactly) and stitch the results.

    Returns an image ``scale`` times larger (``generator.scale``). Images smaller than one tile
    are translated whole.
    """
    from ..data.tiling import tile_positions
    from ..inference.cyclegan import translate

    h, w = image.shape
    scale = generator.scale
    if tile <= 0 or h < tile or w < tile:
        return translate(generator, image[None, None])[0, 0]
    positions = tile_positions(h, w, tile, tile, edge="shift")
    tiles = np.stack([image[y : y + tile, x : x + tile] for y, x in positions])[:, None]
    out_tiles = translate(generator, tiles)
    out = np.zeros((int(h * scale), int(w * scale)), np.float32)
    for (y, x), t in zip(positions, out_tiles):
        ys, xs = int(y * scale), int(x * scale)
        out[ys : ys + t.shape[-2], xs : xs + t.shape[-1]] = t[0]
    return out


def upsample_bicubic(tiles: np.ndarray, scale: int) -> np.ndarray:
    """Bicubic ×``scale`` upsampling of tiles (N, C, h, w) → (N, C, h·s, w·s), float32 [0, 1];
    the naive baseline a super-resolution model has to beat."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.asarray(tiles, dtype=np.float32))
    return (
        F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)
        .clamp(0, 1)
        .numpy()
    )


def _microct_reading(ct: np.ndarray, truth: pd.DataFrame, levels: Sequence[float]) -> pd.DataFrame:
    """The summary row of the micro-CT's own porosity reading: 1 − (tile mean − pore level) /
    (solid level − pore level), clipped to [0, 1], against the true slice's porosity."""
    pore, solid = (float(v) for v in levels)
    mean = np.asarray(ct, np.float64).reshape(len(ct), -1).mean(1)
    read = np.clip(1 - (mean - pore) / (solid - pore), 0, 1)
    true = truth["porosity"].to_numpy(float)
    fit = fit_to_truth(read, true)
    return pd.DataFrame(
        [{"method": "microct_reading", "n": len(read),
          "porosity_mae": float(np.abs(read - true).mean()),
          "porosity_pearson_r": fit["pearson_r"], "porosity_slope": fit["slope"]}]
    )  # fmt: skip


def translation_error(
    translated_tables: Mapping[str, str | os.PathLike],
    translated_curves: Mapping[str, str | os.PathLike],
    truth_table: str | os.PathLike,
    truth_curves: str | os.PathLike,
    microct_tiles: str | os.PathLike,
    microct_table: str | os.PathLike,
    per_tile_out: str | os.PathLike,
    summary_out: str | os.PathLike,
    bicubic_out: str | os.PathLike | None = None,
    *,
    threshold: str | float = "otsu",
    smooth_sigma: float = 1.0,
    microct_levels: Sequence[float] | None = None,
) -> pd.DataFrame:
    """Morphology error of translated micro-CT tiles against the true high-resolution slice
    behind each tile, with bicubic upsampling of the same micro-CT tiles as the baseline.

    ``translated_tables`` / ``translated_curves``: per method (e.g. ``cyclegan_real_only``,
    ``cyclegan``), the morphology table and S2 curves of its translated tiles; methods keep
    that order, bicubic comes last.

    Per tile and method: porosity, specific surface area, λ of the method and of the truth,
    absolute porosity error, relative SSA and λ errors, RMS difference of the normalised S2
    curves. The summary has one row per method (mean absolute / relative errors, Pearson r of
    porosity against the truth, and the slope of porosity on the truth's: 1 keeps the tiles'
    porosity differences, below 1 pulls every tile towards one porosity whatever it holds).
    ``bicubic_out``: the bicubic tiles (.npy), for figures. ``microct_levels``: the micro-CT's
    grey levels of pure pore and pure solid; the summary then ends with ``microct_reading``,
    each tile's porosity as the scanner reads it from its mean grey level — what the input holds
    about a tile's porosity (porosity columns only).
    """
    truth = pd.read_csv(truth_table)
    gc = np.load(truth_curves)
    methods = []
    for method, path in translated_tables.items():
        table = pd.read_csv(path)
        if len(table) != len(truth):
            raise InputError(f"{path}: {len(table)} translated tiles for {len(truth)} truth tiles")
        tc = np.load(translated_curves[method])
        methods.append((method, table, normalised_autocovariance(tc["s2"], tc["porosity"])))
    ct = load_stack(microct_tiles)
    ratio = float(pd.read_csv(microct_table)["pixel_size"].iloc[0]) / float(
        truth["pixel_size"].iloc[0]
    )
    scale = int(round(ratio))
    up = upsample_bicubic(ct, scale)
    if bicubic_out is not None:
        save_npy(bicubic_out, up)
    pores, _ = binarise_pores(up[:, 0], threshold, smooth_sigma)
    pixel_size = float(truth["pixel_size"].iloc[0])
    bic, r, bic_s2 = describe_morphology(
        pores, pixel_size, r_max=len(gc["r"]) - 1, show_progress=False
    )
    g_f = normalised_autocovariance(gc["s2"], gc["porosity"])
    rows = []
    methods.append(("bicubic", bic, normalised_autocovariance(bic_s2, bic["porosity"].to_numpy())))
    for method, table, f in methods:
        for i in range(len(truth)):
            row = {"method": method, "tile": int(truth["tile"].iloc[i])}
            for d in DESCRIPTORS:
                row[d] = float(table[d].iloc[i])
                row[f"{d}_truth"] = float(truth[d].iloc[i])
            row["porosity_abs_error"] = abs(row["porosity"] - row["porosity_truth"])
            for d in ("specific_surface_area", "correlation_length"):
                row[f"{d}_rel_error"] = abs(row[d] - row[f"{d}_truth"]) / row[f"{d}_truth"]
            row["s2_rmse"] = float(np.sqrt(np.nanmean((f[i] - g_f[i]) ** 2)))
            rows.append(row)
    per_tile = pd.DataFrame(rows)
    summary = (
        per_tile.groupby("method", sort=False)
        .agg(
            n=("tile", "size"),
            porosity_mae=("porosity_abs_error", "mean"),
            ssa_mean_rel_error=("specific_surface_area_rel_error", "mean"),
            lambda_mean_rel_error=("correlation_length_rel_error", "mean"),
            s2_rmse=("s2_rmse", "mean"),
        )
        .reset_index()
    )
    fits = [
        fit_to_truth(g.porosity, g.porosity_truth)
        for _, g in per_tile.groupby("method", sort=False)
    ]
    summary["porosity_pearson_r"] = [f["pearson_r"] for f in fits]
    summary["porosity_slope"] = [f["slope"] for f in fits]
    if microct_levels is not None:
        summary = pd.concat([summary, _microct_reading(ct, truth, microct_levels)])
    save_table(per_tile_out, per_tile)
    save_table(summary_out, summary)
    return summary


def _detector_noise_row(stacks: dict[str, np.ndarray], name: str, real: str) -> dict[str, Any]:
    """The white-noise sd of each tile (:func:`detector_noise_sd`), set ``name`` against the
    real set: medians, their ratio (< 1: the tiles lost some of the detector's noise) and the
    Wasserstein distance between the per-tile values, in grey levels."""
    a, b = (detector_noise_sd(stacks[k]) for k in (real, name))
    med_a, med_b = float(np.median(a)), float(np.median(b))
    return {"dataset": name, "reference": real, "descriptor": "detector_noise",
            "mean_real": med_a, "mean_synthetic": med_b, "mean_difference": med_b - med_a,
            "mean_ratio": med_b / med_a if med_a > 0 else np.nan,
            "wasserstein": float(wasserstein_distance(a, b))}  # fmt: skip


def compare_morphology(
    tables: dict[str, str | os.PathLike],
    tiles: dict[str, str | os.PathLike],
    distances_out: str | os.PathLike,
    real: str,
    *,
    porosity_tolerance: float = 0.02,
    lambda_tolerance: float = 0.2,
    diversity_ratio: float = 0.8,
    spectrum_tolerance: float = 0.2,
    pore_grey_tolerance: float = 0.03,
    pore_rim_tolerance: float = 0.01,
    rim_speck_ratio: float = 2.0,
    crack_ratio: float = 2.0,
    pore_circularity_tolerance: float = 0.05,
    smooth_sigma: float = 1.0,
    seed: int = 0,
    spectra_out: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """KS statistic, Wasserstein distance and mean differences of each descriptor between the
    ``real`` set and every other set, plus tile diversity ratios, the largest |log10| ratio of
    radially averaged power spectra over all frequencies (speckle, checkerboard and missing
    noise show there) and the study's targets (porosity mean within ``porosity_tolerance``, λ
    mean within ``lambda_tolerance`` relative, diversity ≥ ``diversity_ratio`` of the real
    set's, spectra within ``spectrum_tolerance`` decades, the grey levels inside pores within
    ``pore_grey_tolerance`` — a Wasserstein distance in grey levels, where hollow or mottled
    pores show, and the mean grey of a rim 1–3 px outside the pores minus the far solid within
    ``pore_rim_tolerance`` of the real tiles' — bright halos around pores show there,
    :func:`~matgen.metrics.morphology.pore_rim_contrast`) as pass/fail columns; and the share of
    the solid within 2 px of a pore brighter than the real tiles' far solid's 99th percentile
    (``pore_rim_specks``, :func:`~matgen.metrics.morphology.bright_rim_share`: one-sided bright
    specks that a rim's mean averages away; a target, its ratio to the real tiles' ≤
    ``rim_speck_ratio``); and the share of tiles holding a crack (``cracks``,
    :func:`~matgen.metrics.morphology.crack_share`: a thin pore ≥ 14 px long, the SEM's
    micro-fractures; a target, its ratio to the real tiles' within a factor ``crack_ratio``);
    and the pores' mean circularity (``pore_circularity``, 4πA/P² of every pore of ≥ 4 px not
    cut by the tile's edge, :func:`~matgen.metrics.morphology.particle_shapes`: the SEM's
    angular, jagged pores against smooth ovals; a target, its ratio to the real tiles' within
    ``pore_circularity_tolerance`` of 1). Pores for the last five are segmented as the
    morphology stage did: the table's ``threshold`` column (else Otsu) after smoothing by
    ``smooth_sigma`` px.
    ``spectra_out`` (NPZ): the frequencies (cycles per pixel), each set's spectrum and the set
    names; the histogram (density over 50 bins in [0, 1]) of each set's pore-interior grey
    levels."""
    frames = {k: pd.read_csv(v) for k, v in tables.items()}
    if real not in frames:
        raise InputError(f"compare_morphology: no table for the real set {real!r}")
    stacks = {k: np.asarray(load_stack(v)[:2000], np.float32) for k, v in tiles.items()}
    sets = {k: describe_tile_set(v, _level(frames[k]), smooth_sigma, seed, table=frames[k])
            for k, v in stacks.items()}  # fmt: skip
    diversity = {k: v.diversity for k, v in sets.items()}
    same_size = len({v.shape[-1] for v in stacks.values()}) == 1
    spectra = {k: v.power for k, v in sets.items()} if same_size else {}
    pore_grey = {k: v.pore_grey for k, v in sets.items()}
    rims = {k: v.pore_rim for k, v in sets.items()}
    specks = _rim_specks(sets, real)
    cracks = {k: crack_share(v.pores) for k, v in sets.items()}
    circularity = {k: particle_shapes(v.pores)["circularity"] for k, v in sets.items()}
    if spectra_out is not None and spectra:
        edges = np.linspace(0.0, 1.0, 51)  # grey levels are in [0, 1]
        density = [np.histogram(np.clip(v, 0, 1), edges, density=True)[0] if len(v)
                   else np.zeros(len(edges) - 1) for v in pore_grey.values()]  # fmt: skip
        save_npz(spectra_out, frequency=sets[real].frequency, names=np.array(list(spectra)),
                 power=np.stack(list(spectra.values())), pore_grey_edges=edges,
                 pore_grey_names=np.array(list(pore_grey)),
                 pore_grey_density=np.stack(density))  # fmt: skip
    rows = []
    for name, frame in frames.items():
        if name == real:
            continue
        for d in DESCRIPTORS:
            dist = distribution_distances(frames[real][d], frame[d])
            rows.append({"dataset": name, "reference": real, "descriptor": d, **dist})
        rows.append(
            {
                "dataset": name,
                "reference": real,
                "descriptor": "diversity",
                "mean_real": diversity[real],
                "mean_synthetic": diversity[name],
                "mean_difference": diversity[name] - diversity[real],
                "mean_ratio": diversity[name] / diversity[real],
            }
        )
        # no pore wider than 2 px, or no tile with a rim to measure: nothing to compare (NaN)
        rows.append(_values_row(pore_grey, name, real, "pore_grey"))
        rows.append(_detector_noise_row(stacks, name, real))
        rows.append(_values_row(rims, name, real, "pore_rim"))
        rows.append(_share_row(specks, name, real, "pore_rim_specks"))
        rows.append(_share_row(cracks, name, real, "cracks"))
        shape = _values_row(circularity, name, real, "pore_circularity")
        rows.append({**shape, "mean_ratio": shape["mean_synthetic"] / shape["mean_real"]})
        if spectra:
            ratio = spectrum_log_ratio(spectra[real], spectra[name])
            rows.append({"dataset": name, "reference": real, "descriptor": "power_spectrum",
                         "max_abs_log_ratio": float(np.abs(ratio).max()),
                         "worst_frequency": float((np.argmax(np.abs(ratio)) + 1)
                                                  / stacks[real].shape[-1])})  # fmt: skip
    out = pd.DataFrame(rows)
    targets = _comparison_targets(
        porosity_tolerance, lambda_tolerance, diversity_ratio, spectrum_tolerance,
        pore_grey_tolerance, pore_rim_tolerance, rim_speck_ratio, crack_ratio,
        pore_circularity_tolerance,
    )  # fmt: skip
    out["target"] = [targets[d][1] if d in targets else "" for d in out["descriptor"]]
    out["meets_target"] = [
        bool(targets[r.descriptor][0](r)) if r.descriptor in targets else None
        for r in out.itertuples()
    ]
    save_table(distances_out, out)
    return out


def _comparison_targets(
    porosity: float, lam: float, diversity: float, spectrum: float, pore_grey: float,
    pore_rim: float, speck_ratio: float, crack_ratio: float, circularity: float,
) -> dict[str, tuple[Callable[[Any], bool], str]]:  # fmt: skip
    """Descriptor → (whether a distances row meets its target, the target in words), from
    :func:`compare_morphology`'s tolerances in its order."""
    return {
        "porosity": (lambda r: abs(r.mean_difference) <= porosity, f"|Δmean| ≤ {porosity}"),
        "correlation_length": (lambda r: abs(r.mean_ratio - 1) <= lam, f"|ratio − 1| ≤ {lam}"),
        "diversity": (lambda r: r.mean_ratio >= diversity, f"ratio ≥ {diversity}"),
        "power_spectrum": (
            lambda r: r.max_abs_log_ratio <= spectrum,
            f"max |log10 ratio| ≤ {spectrum}",
        ),
        "pore_grey": (lambda r: r.wasserstein <= pore_grey, f"Wasserstein ≤ {pore_grey}"),
        "pore_rim": (lambda r: abs(r.mean_difference) <= pore_rim, f"|Δmean| ≤ {pore_rim}"),
        "pore_rim_specks": (lambda r: r.mean_ratio <= speck_ratio, f"ratio ≤ {speck_ratio}"),
        "cracks": (
            lambda r: 1 / crack_ratio <= r.mean_ratio <= crack_ratio,
            f"ratio in [{1 / crack_ratio:g}, {crack_ratio:g}]",
        ),
        "pore_circularity": (
            lambda r: abs(r.mean_ratio - 1) <= circularity,
            f"|ratio − 1| ≤ {circularity}",
        ),
    }


def _rim_specks(sets: dict[str, TileSetDescription], real: str) -> dict[str, float]:
    """Each set's share of near-pore solid brighter than the real tiles' far solid's 99th
    percentile (:func:`~matgen.metrics.morphology.bright_rim_share`), on the tiles smoothed and
    cut as the morphology stage cut them (the sets' own segmentation)."""
    level = far_solid_level(sets[real].smoothed, sets[real].pores)
    return {k: bright_rim_share(v.smoothed, v.pores, level) for k, v in sets.items()}


def _share_row(shares: dict[str, float], name: str, real: str, descriptor: str) -> dict:
    """A distances row of a share (specks, cracks): each set's, their difference and ratio."""
    return {"dataset": name, "reference": real, "descriptor": descriptor,
            "mean_real": shares[real], "mean_synthetic": shares[name],
            "mean_difference": shares[name] - shares[real],
            "mean_ratio": _share_ratio(shares[name], shares[real])}  # fmt: skip


def _share_ratio(share: float, real_share: float) -> float:
    """A share over the real set's: NaN where either was not measured; where the real set
    holds none, 1 if this set holds none either, else infinitely many."""
    if np.isnan(share) or np.isnan(real_share):
        return float("nan")
    if real_share > 0:
        return share / real_share
    return 1.0 if share == 0 else float("inf")


def _level(table: pd.DataFrame) -> str | float:
    """The grey level a tile set's pores were cut at, as its morphology table records it (Otsu
    when it has none)."""
    return float(table["threshold"].iloc[0]) if "threshold" in table else "otsu"


def _values_row(
    values: dict[str, np.ndarray], name: str, real: str, descriptor: str
) -> dict[str, Any]:
    """Set ``name``'s values of ``descriptor`` (pore-interior grey levels, per-tile pore rims)
    against the real set's, non-finite ones left out: means, their difference and the
    Wasserstein distance (NaN where either set has none)."""
    a, b = (v[np.isfinite(v)] for v in (values[real], values[name]))
    empty = not (len(a) and len(b))
    return {"dataset": name, "reference": real, "descriptor": descriptor,
            "wasserstein": np.nan if empty else float(wasserstein_distance(a, b)),
            "mean_real": float(a.mean()) if len(a) else np.nan,
            "mean_synthetic": float(b.mean()) if len(b) else np.nan,
            "mean_difference": np.nan if empty else float(b.mean() - a.mean())}  # fmt: skip


PANEL_ROWS = ("real", "styles", "noise", "interpolation")


def stylegan2_panels(
    checkpoint: str | os.PathLike,
    real_tiles: str | os.PathLike,
    panels_out: str | os.PathLike,
    table_out: str | os.PathLike,
    layout_out: str | os.PathLike | None = None,
    *,
    seed: int = 0,
    n_columns: int = 6,
    threshold: str | float = "otsu",
    smooth_sigma: float = 1.0,
    device: str = "cpu",
) -> pd.DataFrame:
    """The tiles of the StyleGAN2 samples figure, four rows of ``n_columns``:

    1. ``real``: real tiles (random, seeded); 2. ``styles``: tiles of different latents with
    the generator's constant noise (what the latent controls); 3. ``noise``: one latent with
    different noise draws (what the per-pixel noise controls), the last panel the per-pixel
    standard deviation over 16 draws, scaled to [0, 1]; 4. ``interpolation``: linear
    interpolation in W between two end members — the least and the most porous of 64 samples —
    with constant noise.

    Writes ``panels_out`` (.npz, one (n_columns, R, R) array per row) and ``table_out``
    (row, column, id: the seed or real tile index, -1 for the std panel; porosity at the real
    tiles' level — ``threshold`` over all real tiles after ``smooth_sigma`` px smoothing, one
    level for every panel, as the training monitor cuts, so a tile darker or lighter than the
    SEM shows it; NaN for the std panel). A single tile's own Otsu level split the solid of a
    tile with few pores: φ 0.37 on tiles of a few small pores.
    ``layout_out`` (.csv, optional): :func:`pore_layout_share` of the generator.
    """
    from ..inference.stylegan2 import generate, interpolate_w, load_stylegan2
    from ..io import save_npz
    from ..metrics.morphology import porosity

    G = load_stylegan2(checkpoint, str(select_device(device)))
    real = load_stack(real_tiles)
    level = binarise_pores(np.asarray(real[:, 0], np.float32), threshold, smooth_sigma)[1]
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(real), min(n_columns, len(real)), replace=False))
    seeds = seed + np.arange(n_columns)
    noise_seeds = seed + 1000 + np.arange(16)
    varied = generate(G, np.full(len(noise_seeds), seed), noise_seeds=noise_seeds)[:, 0]
    spread = varied.std(0)
    pool = seed + 10_000 + np.arange(64)
    phis = porosity(
        binarise_pores(generate(G, pool, noise_mode="const")[:, 0], level, smooth_sigma)[0]
    )
    ends = pool[[int(np.argmin(phis)), int(np.argmax(phis))]]
    rows = {
        "real": (np.asarray(real[pick, 0], np.float32), pick),
        "styles": (generate(G, seeds, noise_mode="const")[:, 0], seeds),
        "noise": (
            np.concatenate([varied[: n_columns - 1], [spread / max(spread.max(), 1e-8)]]),
            np.append(noise_seeds[: n_columns - 1], -1),
        ),
        "interpolation": (
            interpolate_w(G, int(ends[0]), int(ends[1]), n_columns)[:, 0],
            np.array([ends[0]] * (n_columns - 1) + [ends[1]]),
        ),
    }
    records = []
    for name, (images, ids) in rows.items():
        for c, (image, i) in enumerate(zip(images, ids)):
            is_spread = name == "noise" and c == n_columns - 1
            phi = (
                np.nan
                if is_spread
                else float(porosity(binarise_pores(image, level, smooth_sigma)[0]))
            )
            records.append({"row": name, "column": c, "id": int(i), "porosity": phi})
    save_npz(panels_out, **{name: images for name, (images, _) in rows.items()})
    table = pd.DataFrame(records)
    save_table(table_out, table)
    if layout_out is not None:
        layout = pore_layout_share(G, seed + 20_000, threshold, smooth_sigma)
        save_table(layout_out, pd.DataFrame([layout]))
    return table


def pore_layout_share(
    G: "torch.nn.Module",
    seed: int,
    threshold: str | float = "otsu",
    smooth_sigma: float = 1.0,
    n_latents: int = 24,
    n_noise: int = 8,
) -> dict[str, float]:
    """Who places the pores, the latent or the per-pixel noise: ``n_latents`` latents × ``n_noise``
    noise draws of a StyleGAN2 generator, segmented as the morphology stage does (one
    ``threshold`` over all of them, after ``smooth_sigma`` px smoothing), and the share of the
    pore maps' variance that the latent sets (:func:`latent_share_of_variance`; 1/``n_noise``
    ≈ noise only). Returns ``latent_share``, ``n_latents``, ``n_noise``."""
    from ..inference.stylegan2 import generate
    from ..metrics.distributions import latent_share_of_variance

    seeds = np.repeat(seed + np.arange(n_latents), n_noise)
    noise_seeds = seed + 1_000_000 * (1 + np.tile(np.arange(n_noise), n_latents)) + seeds
    images = generate(G, seeds, noise_seeds=noise_seeds)[:, 0]
    pores = binarise_pores(images, threshold, smooth_sigma)[0]
    share = latent_share_of_variance(pores.reshape(n_latents, n_noise, *pores.shape[1:]))
    return {"latent_share": share, "n_latents": n_latents, "n_noise": n_noise}
