"""Morphology stage: per-tile porosity, specific surface area, S2(r) and correlation length."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import wasserstein_distance

from ..data.ingest import load_stack
from ..data.threshold import binarise_pores, smooth_images
from ..io import save_npz, save_table
from ..metrics.distributions import distribution_distances, pairwise_diversity
from ..metrics.morphology import (
    correlation_length,
    normalised_autocovariance,
    pore_interior_grey,
    pore_rim_contrast,
    porosity,
    specific_surface_area,
    two_point_correlation,
)
from ..metrics.spectra import radial_power_spectrum, spectrum_log_ratio
from ..util import progress

# the scalar descriptors of a tile, in the order tables and figures list them
DESCRIPTORS = ("porosity", "specific_surface_area", "correlation_length")


def describe_morphology(
    pores: np.ndarray,
    pixel_size: float,
    r_max: int,
    batch: int = 64,
    show_progress: bool = True,
    ndim: int = 2,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Descriptors of a batch of binary images (N, H, W), or volumes (N, D, H, W) with
    ``ndim=3``; True = pore.

    Returns a table (porosity; specific_surface_area in 1/unit: interface length per area in
    2-D, surface per volume in 3-D; correlation_length in unit and pixels), the lags r (pixels)
    and S2 (N, R).
    """
    curves = []
    starts = range(0, len(pores), batch)
    for start in progress(starts, desc="S2", total=len(starts)) if show_progress else starts:
        r, s2 = two_point_correlation(pores[start : start + batch], r_max=r_max, ndim=ndim)
        curves.append(s2)
    s2 = np.concatenate(curves)
    phi = np.atleast_1d(porosity(pores, ndim=ndim))
    lam_px = np.atleast_1d(correlation_length(r, s2, phi))
    table = pd.DataFrame(
        {
            "porosity": phi,
            "specific_surface_area": np.atleast_1d(
                specific_surface_area(pores, pixel_size, ndim=ndim)
            ),
            "correlation_length": lam_px * pixel_size,
            "correlation_length_px": lam_px,
        }
    )
    return table, r, s2


# How far a synthetic tile set may be from the real one on each quantity of
# :func:`tile_set_mismatch` (the porous study's targets, issue 17; the pore grey, the comparison's);
# the workflow passes the configured ones (:func:`mismatch_tolerances`)
MISMATCH_TOLERANCES = {
    "porosity_difference": 0.01,
    "ks_porosity": 0.15,
    "ks_specific_surface_area": 0.15,
    "ks_correlation_length": 0.15,
    "diversity_shortfall": 0.1,
    "spectrum_log_ratio": 0.2,
    "pore_grey": 0.03,
}


def mismatch_tolerances(compare: Mapping[str, float], ks: float) -> dict[str, float]:
    """:data:`MISMATCH_TOLERANCES` from the study's targets: the comparison's (``compare``:
    ``porosity_tolerance``, ``diversity_ratio``, ``spectrum_tolerance``, ``pore_grey_tolerance``)
    and the headline table's KS target ``ks`` for porosity, specific surface area and λ."""
    return {
        "porosity_difference": float(compare["porosity_tolerance"]),
        **{f"ks_{d}": float(ks) for d in DESCRIPTORS},
        "diversity_shortfall": 1.0 - float(compare["diversity_ratio"]),
        "spectrum_log_ratio": float(compare["spectrum_tolerance"]),
        "pore_grey": float(compare["pore_grey_tolerance"]),
    }


@dataclass(frozen=True)
class TileSetDescription:
    """What :func:`tile_set_mismatch` and the comparison stage measure of one tile set, kept to
    compare many sets with one (the real tiles, once per training run rather than once per
    snapshot)."""

    table: pd.DataFrame  # describe_morphology's (pixel size 1) or the morphology stage's
    diversity: float  # pairwise_diversity
    frequency: np.ndarray  # cycles per pixel of ...
    power: np.ndarray  # ... the radially averaged power spectrum
    pore_grey: np.ndarray  # grey levels inside pores
    pore_rim: np.ndarray  # per tile, rim minus far solid (pore_rim_contrast; NaN: not measured)
    smoothed: np.ndarray  # the grey levels as the pores were cut from them, (N, H, W)
    pores: np.ndarray  # the pores so cut, (N, H, W) bool
    settings: tuple[str | float, float, int]  # threshold, smooth_sigma, seed it was made with


def describe_tile_set(
    grey: np.ndarray,
    threshold: str | float = "otsu",
    smooth_sigma: float = 1.0,
    seed: int = 0,
    table: pd.DataFrame | None = None,
) -> TileSetDescription:
    """A tile set's :class:`TileSetDescription`; arguments as :func:`tile_set_mismatch`'s.
    ``table``: the set's descriptors as the morphology stage measured them (same segmentation),
    used instead of measuring them again."""
    grey = np.asarray(grey, np.float32).reshape(len(grey), *np.shape(grey)[-2:])
    smoothed = smooth_images(grey, smooth_sigma)
    pores, _ = binarise_pores(smoothed, threshold)
    if table is None:
        table = describe_morphology(pores, 1.0, grey.shape[-1] // 2, show_progress=False)[0]
    return TileSetDescription(
        table,
        float(pairwise_diversity(grey, seed=seed)),
        *radial_power_spectrum(grey),
        pore_interior_grey(grey, pores),
        pore_rim_contrast(grey, pores),
        smoothed,
        pores,
        (threshold, smooth_sigma, seed),
    )


def tile_set_mismatch(
    real: np.ndarray | TileSetDescription,
    synthetic: np.ndarray,
    threshold: str | float = "otsu",
    smooth_sigma: float = 1.0,
    seed: int = 0,
    tolerances: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """How far a set of synthetic grey-level tiles is from the real set.

    Each set is segmented as the morphology stage segments it (``threshold``: its own Otsu
    level by default, after ``smooth_sigma`` px smoothing). Returns the quantities of
    :data:`MISMATCH_TOLERANCES`, each 0 for identical sets: |Δ mean porosity|, the KS statistic
    of porosity, specific surface area and correlation length, the diversity shortfall
    max(0, 1 − ratio) (:func:`~matgen.metrics.distributions.pairwise_diversity`, pairs drawn by
    ``seed``), the largest |log10| ratio of the radially averaged power spectra (decades) and
    the W1 distance of the grey levels inside pores; and ``score``, their sum with each divided
    by its tolerance in ``tolerances`` (default :data:`MISMATCH_TOLERANCES`): the number of
    targets' widths the set is off, summed (0 = the real set).

    ``real``, ``synthetic``: (N, H, W) or (N, 1, H, W) grey levels in [0, 1], one tile size;
    ``real`` may be its :func:`describe_tile_set` (made with the same ``threshold``,
    ``smooth_sigma`` and ``seed``, else ValueError).
    """
    if not isinstance(real, TileSetDescription):
        real = describe_tile_set(real, threshold, smooth_sigma, seed)
    elif real.settings != (threshold, smooth_sigma, seed):
        raise ValueError(
            f"tile_set_mismatch: the real set was described with (threshold, smooth_sigma, seed)"
            f" {real.settings}, the synthetic one would be with {(threshold, smooth_sigma, seed)}"
        )
    fake = describe_tile_set(synthetic, threshold, smooth_sigma, seed)
    out = {"porosity_difference": abs(fake.table.porosity.mean() - real.table.porosity.mean())}
    for d in DESCRIPTORS:
        out[f"ks_{d}"] = distribution_distances(real.table[d], fake.table[d])["ks_statistic"]
    out["diversity_shortfall"] = max(0.0, 1.0 - fake.diversity / real.diversity)
    out["spectrum_log_ratio"] = float(np.abs(spectrum_log_ratio(real.power, fake.power)).max())
    # a set without pores wider than 2 px has no interior grey to compare: counted as far off
    greys = (real.pore_grey, fake.pore_grey)
    out["pore_grey"] = float(wasserstein_distance(*greys)) if min(map(len, greys)) else 1.0
    out = {k: float(v) for k, v in out.items()}
    tolerances = MISMATCH_TOLERANCES if tolerances is None else tolerances
    out["score"] = sum(out[k] / tolerances[k] for k in MISMATCH_TOLERANCES)
    return out


def morphology_of_tiles(
    tiles_path: str | os.PathLike,
    tile_table_path: str | os.PathLike,
    table_out: str | os.PathLike,
    curves_out: str | os.PathLike,
    summary_out: str | os.PathLike | None = None,
    *,
    threshold: str | float = "otsu",
    smooth_sigma: float = 1.0,
    r_max: int | None = None,
    n_examples: int = 4,
) -> pd.DataFrame:
    """Segment the pores of every tile and measure them; see :func:`describe_morphology`.

    Writes a CSV (one row per tile: tile, sample, the descriptors, the threshold used); an NPZ
    with ``r`` (px), ``r_unit`` (same unit as the pixel size), ``s2`` (N, R), the normalised
    autocovariance ``autocovariance`` (N, R) and its mean over tiles, and ``n_examples`` evenly
    spaced ``example_tiles`` with their grey ``example_images`` and ``example_pores``; and
    (``summary_out``) the descriptors' summary, :func:`morphology_summary`.
    """
    tiles = load_stack(tiles_path)
    meta = pd.read_csv(tile_table_path)
    pores, level = binarise_pores(
        np.asarray(tiles[:, 0], dtype=np.float32), threshold, smooth_sigma
    )
    pixel_size = float(meta["pixel_size"].iloc[0])
    r_max = tiles.shape[-1] // 2 if r_max is None else r_max
    table, r, s2 = describe_morphology(pores, pixel_size, r_max)
    table.insert(0, "tile", meta["tile"].to_numpy())
    table.insert(1, "sample", meta["sample"].to_numpy())
    table["threshold"] = level
    table["pixel_size"] = pixel_size
    autocovariance = normalised_autocovariance(s2, table["porosity"].to_numpy())
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a lag where every tile is NaN
        mean_autocovariance = np.nanmean(autocovariance, axis=0)
    examples = np.linspace(0, len(tiles) - 1, min(n_examples, len(tiles))).astype(int)
    save_npz(
        curves_out,
        r=r,
        r_unit=r * pixel_size,
        s2=s2,
        porosity=table["porosity"].to_numpy(),
        correlation_length_px=table["correlation_length_px"].to_numpy(),
        autocovariance=autocovariance,
        mean_autocovariance=mean_autocovariance,
        example_tiles=examples,
        example_images=np.asarray(tiles[examples, 0], np.float32),
        example_pores=pores[examples],
    )
    save_table(table_out, table)
    if summary_out is not None:
        save_table(summary_out, morphology_summary(table, r * pixel_size, mean_autocovariance))
    return table


def morphology_summary(
    table: pd.DataFrame, r: np.ndarray, mean_autocovariance: np.ndarray
) -> pd.DataFrame:
    """Per descriptor (porosity, specific surface area, correlation length) of a tile set: n,
    mean, standard deviation, quartiles; and the mean normalised S2 at the mean λ
    (``s2_normalised_at_lambda``, e⁻¹ ≈ 0.37 for an exactly exponential correlation).

    ``r`` and the λ column share a length unit; the quantities keep the table's units.
    """
    rows = []
    for column in DESCRIPTORS:
        v = table[column].dropna().to_numpy()
        rows.append(
            {
                "descriptor": column,
                "n": len(v),
                "mean": v.mean(),
                "std": v.std(ddof=1) if len(v) > 1 else 0.0,
                "q25": np.quantile(v, 0.25),
                "median": np.median(v),
                "q75": np.quantile(v, 0.75),
            }
        )
    lam = float(np.nanmean(table["correlation_length"]))
    rows.append(
        {
            "descriptor": "s2_normalised_at_lambda",
            "n": len(table),
            "mean": float(np.interp(lam, r, mean_autocovariance)),
            "std": np.nan,
            "q25": np.nan,
            "median": np.nan,
            "q75": np.nan,
        }
    )
    return pd.DataFrame(rows)
