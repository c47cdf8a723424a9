"""Point-labelled images (atom-resolved STEM with vacancy positions): ingestion and targets.

Ingestion output: ``images.npy`` (N, 1, H, W) float32 in [0, 1] at one pixel size (Å/px) for the
whole study, a table (one row per image) and ``points.csv`` (image, x_px, y_px, x_angstrom,
y_angstrom, type) — coordinates in a table, never only in masks. ``type`` is the point's label
from the source table's ``type`` column (e.g. V_Se, V_Se2, V_W), or ``vacancy`` where it has none.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import ndimage

from ..errors import InputError
from ..io import read_image, read_sample_sheet, save_npy, save_table

# length units accepted in a sheet's pixel_unit column, in Å
ANGSTROM_PER_UNIT = {"angstrom": 1.0, "a": 1.0, "å": 1.0, "nm": 10.0, "pm": 0.01}
# atom-resolved images must sample the 1.9 Å W–Se column spacing well above Nyquist
MAX_PIXEL_SIZE = 0.6
MIN_PIXEL_SIZE = 0.005
POINT_COLUMNS = ["image", "x_px", "y_px", "x_angstrom", "y_angstrom", "type"]
UNTYPED = "vacancy"  # the type of a point whose table says none


def normalise_percentile(image: np.ndarray, low: float = 1.0, high: float = 99.5) -> np.ndarray:
    """Map the ``low``–``high`` percentile range of an image to [0, 1], clipped.

    Robust to hot pixels and an arbitrary detector offset/gain; a blank (constant) image
    becomes all zeros.
    """
    lo, hi = np.percentile(image, [low, high])
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):
        return np.zeros(image.shape, np.float32)
    return np.clip((image - lo) / (hi - lo), 0, 1).astype(np.float32)


def pixel_size_angstrom(value: float, unit: str, where: str) -> float:
    """Pixel size in Å from a value and its unit; rejects units and sizes that cannot resolve
    atomic columns (the usual sign of nm given as Å or the reverse)."""
    key = (unit or "angstrom").strip().lower()
    if key not in ANGSTROM_PER_UNIT:
        raise InputError(
            f"{where}: pixel_unit {unit!r} is not a length unit for STEM (use angstrom, nm or pm)"
        )
    size = value * ANGSTROM_PER_UNIT[key]
    if not MIN_PIXEL_SIZE <= size <= MAX_PIXEL_SIZE:
        raise InputError(
            f"{where}: pixel_size {value} {unit or 'angstrom'} = {size:g} Å/px cannot "
            f"be an atom-resolved image ({MIN_PIXEL_SIZE}–{MAX_PIXEL_SIZE} Å/px); "
            f"is pixel_unit right?"
        )
    return size


def read_points(
    path: str, shape: tuple[int, int], pixel_size: float
) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) point coordinates (x, y) in pixels from a CSV with x_px, y_px or x_angstrom,
    y_angstrom columns, and their (N,) types (the optional ``type`` column, else
    :data:`UNTYPED`); every point must lie inside the ``shape`` image."""
    try:
        table = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return np.empty((0, 2)), np.empty(0, dtype=object)
    except Exception as exc:
        raise InputError(f"{path}: unreadable point table ({str(exc).splitlines()[0]})") from None
    if {"x_px", "y_px"} <= set(table.columns):
        xy = table[["x_px", "y_px"]].to_numpy(float)
    elif {"x_angstrom", "y_angstrom"} <= set(table.columns):
        xy = table[["x_angstrom", "y_angstrom"]].to_numpy(float) / pixel_size
    else:
        raise InputError(
            f"{path}: point table needs columns x_px, y_px or x_angstrom, y_angstrom "
            f"(has {', '.join(table.columns)})"
        )
    if not np.isfinite(xy).all():
        raise InputError(
            f"{path}: row {int(np.flatnonzero(~np.isfinite(xy).all(1))[0]) + 2}: "
            f"coordinate is not a number"
        )
    h, w = shape
    out = (xy[:, 0] < -0.5) | (xy[:, 0] > w - 0.5) | (xy[:, 1] < -0.5) | (xy[:, 1] > h - 0.5)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise InputError(
            f"{path}: row {i + 2}: point ({xy[i, 0]:.1f}, {xy[i, 1]:.1f}) px lies "
            f"outside the {w} x {h} px image"
        )
    if "type" not in table.columns:
        return xy, np.full(len(xy), UNTYPED, dtype=object)
    types = table["type"].fillna("").astype(str).str.strip()
    if (types == "").any():
        raise InputError(f"{path}: row {int(np.flatnonzero(types == '')[0]) + 2}: empty type")
    return xy, types.to_numpy(dtype=object)


def ingest_point_domain(
    sample_sheet: str | os.PathLike,
    domain: str,
    images_out: str | os.PathLike,
    table_out: str | os.PathLike,
    points_out: str | os.PathLike,
    *,
    pixel_size: float,
    require_points: bool = False,
    default_unit: str = "angstrom",
) -> pd.DataFrame:
    """Stack the atom-resolved images of ``domain`` at ``pixel_size`` Å/px, with their points.

    Each image is resampled (cubic spline) from its own pixel size to ``pixel_size`` and
    normalised to [0, 1] between its 1st and 99.5th percentiles; point coordinates are scaled
    with it. All images of a domain must come out the same shape. With ``require_points``
    every row needs a ``points`` file (possibly with no rows: an image without vacancies).
    An empty pixel size is read from the file's metadata (e.g. a .dm4 through RosettaSciIO).
    Nothing is written unless every row is valid.
    """
    sheet = read_sample_sheet(sample_sheet, unit=default_unit)
    rows = sheet[sheet["domain"] == domain].reset_index(drop=True)
    if rows.empty:
        known = ", ".join(sorted(sheet["domain"].unique()))
        raise InputError(f"{sample_sheet}: no rows with domain {domain!r} (domains: {known})")
    images, points, sizes = [], [], []
    for i, row in rows.iterrows():
        where = f"{sample_sheet}: row {row['row']}"
        size = pixel_size_angstrom(
            float(row["pixel_size"]), row.get("pixel_unit", "") or default_unit, where
        )
        raw = read_image(row["path"]).astype(np.float64)
        factor = size / pixel_size
        image = ndimage.zoom(raw, factor, order=3) if abs(factor - 1) > 1e-6 else raw
        if images and image.shape != images[0].shape:
            raise InputError(
                f"{where}: {row['path']}: shape {image.shape} at {pixel_size} Å/px "
                f"differs from {images[0].shape} of {rows['path'][0]}"
            )
        images.append(normalise_percentile(image))
        sizes.append(size)
        point_file = row.get("points", "")
        if require_points and not point_file:
            raise InputError(f"{where}: no points file; domain {domain!r} needs point labels")
        if point_file:
            xy, types = read_points(point_file, raw.shape, size)
            xy = xy * factor
            points.append(
                pd.DataFrame({"image": i, "x_px": xy[:, 0], "y_px": xy[:, 1], "type": types})
            )
    table = rows.drop(columns=["domain"]).assign(
        domain=domain,
        index=np.arange(len(rows)),
        source_pixel_size_angstrom=sizes,
        pixel_size=pixel_size,
        pixel_unit="angstrom",
        height=images[0].shape[0],
        width=images[0].shape[1],
    )
    pts = (
        pd.concat(points, ignore_index=True)
        if points
        else pd.DataFrame({"image": [], "x_px": [], "y_px": [], "type": []})
    )
    pts["x_angstrom"], pts["y_angstrom"] = pts["x_px"] * pixel_size, pts["y_px"] * pixel_size
    pts["image"] = pts["image"].astype(int)
    save_npy(images_out, np.stack(images)[:, None])
    save_table(table_out, table)
    save_table(points_out, pts[POINT_COLUMNS])
    return table


def load_points(
    points_path: str | os.PathLike, n_images: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-image (N_i, 2) pixel coordinates and (N_i,) types from a points table written by
    ingestion (:data:`UNTYPED` for a table written before types existed)."""
    try:
        table = pd.read_csv(points_path)
    except FileNotFoundError:
        raise InputError(f"{points_path}: point table not found") from None
    missing = [c for c in ("image", "x_px", "y_px") if c not in table.columns]
    if missing:
        raise InputError(f"{points_path}: missing column {missing[0]!r}")
    if "type" not in table.columns:
        table["type"] = UNTYPED
    groups = {int(k): g for k, g in table.groupby("image")}
    empty = table.iloc[:0]
    per_image = [groups.get(i, empty) for i in range(n_images)]
    return (
        [g[["x_px", "y_px"]].to_numpy(float).reshape(-1, 2) for g in per_image],
        [g["type"].astype(str).to_numpy(object) for g in per_image],
    )


def scored_vacancy_types(columns: Iterable[str]) -> list[str]:
    """The vacancy types a scores table (Table 1) has per-type columns for: ``n_<type>``
    beside ``f1_<type>``, sorted."""
    names = set(columns)
    return sorted(c[2:] for c in names if c.startswith("n_") and f"f1_{c[2:]}" in names)


def point_heatmap(xy: np.ndarray, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Target map with a unit-height Gaussian (``sigma`` px) at each point (max where two
    overlap), float32 (H, W)."""
    target = np.zeros(shape, np.float32)
    if len(xy) == 0:
        return target
    r = int(np.ceil(3 * sigma))
    offs = np.arange(-r, r + 1)
    for x, y in np.asarray(xy, float):
        cy, cx = int(round(y)), int(round(x))
        ys, xs = cy + offs, cx + offs
        gy = np.exp(-((ys - y) ** 2) / (2 * sigma**2))
        gx = np.exp(-((xs - x) ** 2) / (2 * sigma**2))
        vy, vx = (ys >= 0) & (ys < shape[0]), (xs >= 0) & (xs < shape[1])
        patch = np.outer(gy[vy], gx[vx]).astype(np.float32)
        region = target[np.ix_(ys[vy], xs[vx])]
        target[np.ix_(ys[vy], xs[vx])] = np.maximum(region, patch)
    return target
