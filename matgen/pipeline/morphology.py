"""Morphology stage: per-tile porosity, specific surface area, S2(r) and correlation length."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd

from ..data.ingest import load_stack
from ..data.threshold import binarise_pores
from ..io import save_npz, save_table
from ..metrics.morphology import (
    correlation_length,
    normalised_autocovariance,
    porosity,
    specific_surface_area,
    two_point_correlation,
)
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
