"""Sample sheet -> one validated image stack per domain.

Output: ``images.npy`` (N, 1, H, W) float32 in [0, 1], ``masks.npy`` (N, H, W) uint8 with
:data:`MASK_UNLABELLED` where a row has no mask, and a table with one row per image (its
``height`` and ``width``; images of different sizes sit in the top-left corner of the stack,
padded with 0 and unlabelled mask). A volume enters as its slices along one axis, one image
each, with ``slice_index`` and ``volume_axis`` in the table.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..io import read_sample_sheet, read_volume, save_npy, save_table, to_unit_float

MASK_UNLABELLED = 255


def ingest_domain(
    sample_sheet: str | os.PathLike,
    domain: str,
    images_out: str | os.PathLike,
    masks_out: str | os.PathLike,
    table_out: str | os.PathLike,
    *,
    uniform_pixel_size: bool = True,
    classes: list[str] | None = None,
    require_e11: bool = False,
    mask_classes: list[str] | None = None,
    mixed_sizes: bool = False,
    volume_axis: int = 0,
    pixel_unit: str = "um",
) -> pd.DataFrame:
    """Read every image of ``domain`` listed in ``sample_sheet`` into one stack.

    All images of a domain must share one shape (unless ``mixed_sizes``: then each keeps its
    own, recorded in the table) and, unless ``uniform_pixel_size`` is False
    (e.g. RVEs of different physical size imaged at one pixel count), one pixel size; integer
    images are scaled by their dtype's range to [0, 1]. Masks are integer label images (0..254)
    of the same shape. With ``classes``, every row's ``class`` must be one of them; with
    ``require_e11`` every row needs a numeric ``e11``. With ``mask_classes`` (names of the
    segmentation classes, label = index) every mask value must be a class label and every class
    must occur in some mask. A volume (multi-page TIFF, 3-D NPY, .raw) is cut into its 2-D
    slices along ``volume_axis`` (0, 1 or 2). Empty pixel sizes are read from the files'
    metadata in ``pixel_unit``. Nothing is written unless every row is valid. Returns the table
    written to ``table_out``.
    """
    sheet = read_sample_sheet(sample_sheet, unit=pixel_unit)
    rows = sheet[sheet["domain"] == domain].reset_index(drop=True)
    if rows.empty:
        known = ", ".join(sorted(sheet["domain"].unique()))
        raise InputError(f"{sample_sheet}: no rows with domain {domain!r} (domains: {known})")
    if classes is not None:
        if "class" not in rows:
            raise InputError(f"{sample_sheet}: no 'class' column; expected one of {list(classes)}")
        known = {str(c) for c in classes}
        bad = [i for i, c in enumerate(rows["class"].astype(str)) if c not in known]
        if bad:
            raise InputError(
                f"{sample_sheet}: row {rows['row'][bad[0]]}: class "
                f"{rows['class'][bad[0]]!r} is not one of {list(classes)}"
            )
    if require_e11:
        e11 = pd.to_numeric(rows.get("e11", pd.Series([np.nan] * len(rows))), errors="coerce")
        if e11.isna().any():
            i = int(np.flatnonzero(e11.isna())[0])
            raise InputError(f"{sample_sheet}: row {rows['row'][i]}: e11 is missing")
    sizes = rows["pixel_size"].to_numpy()
    if uniform_pixel_size and not np.allclose(sizes, sizes[0], rtol=1e-6):
        odd = int(np.flatnonzero(~np.isclose(sizes, sizes[0], rtol=1e-6))[0])
        raise InputError(
            f"{sample_sheet}: row {rows['row'][odd]}: pixel_size {sizes[odd]} differs "
            f"from {sizes[0]} of row {rows['row'][0]}; one domain needs one pixel size"
        )
    images, masks, records = [], [], []
    for _, row in rows.iterrows():
        for image, mask, where in _slices(row, volume_axis):
            if images and image.shape != images[0].shape and not mixed_sizes:
                raise InputError(
                    f"{sample_sheet}: row {row['row']}: {row['path']}: shape {image.shape} "
                    f"differs from {images[0].shape} of {rows['path'][0]} (set the study's "
                    f"ingest.mixed_sizes to keep each image's size)"
                )
            images.append(to_unit_float(image))
            masks.append(mask)
            records.append({**row.to_dict(), **where})
            if mask_classes is not None and row.get("mask", ""):
                values = np.unique(mask)
                if values.max() >= len(mask_classes):
                    raise InputError(
                        f"{row['mask']}: mask value {int(values.max())} is not a class "
                        f"label 0..{len(mask_classes) - 1} ({', '.join(mask_classes)})"
                    )
    if mask_classes is not None:
        seen = np.zeros(len(mask_classes), bool)
        for m in masks:
            labelled = m[m != MASK_UNLABELLED]
            seen[np.unique(labelled).astype(int)] = True
        if not seen.all():
            missing = [c for c, s in zip(mask_classes, seen) if not s]
            raise InputError(
                f"{sample_sheet}: class {missing[0]!r} occurs in none of the masks of "
                f"domain {domain!r}"
            )
    rows = pd.DataFrame(records)
    table = rows.drop(columns=["domain"]).assign(
        domain=domain,
        index=np.arange(len(rows)),
        height=[im.shape[0] for im in images],
        width=[im.shape[1] for im in images],
        has_mask=[bool(m) for m in rows.get("mask", [""] * len(rows))],
    )
    save_npy(images_out, _padded(images, 0.0, np.float32)[:, None])
    save_npy(masks_out, _padded(masks, MASK_UNLABELLED, np.uint8))
    save_table(table_out, table)
    return table


def _slices(row: pd.Series, axis: int) -> list[tuple[np.ndarray, np.ndarray, dict[str, int]]]:
    """A sheet row's images with their masks: the image itself, or a volume's slices along
    ``axis`` with where each came from."""
    image = read_volume(row["path"], row.get("raw_shape", ""), row.get("raw_dtype", ""))
    if image.ndim == 2:
        return [(image, _read_mask(row.get("mask", ""), image.shape), {})]
    if axis not in (0, 1, 2):
        raise InputError(
            f"{row['path']}: volume axis {axis} is out of range for a 3-D volume (0, 1 or 2)"
        )
    mask = _read_mask(row.get("mask", ""), image.shape)
    return [
        (s, m, {"slice_index": k, "volume_axis": axis})
        for k, (s, m) in enumerate(zip(np.moveaxis(image, axis, 0), np.moveaxis(mask, axis, 0)))
    ]


def _padded(arrays: list[np.ndarray], fill: float, dtype: type) -> np.ndarray:
    """Stack 2-D arrays of possibly different shapes, each in the top-left corner."""
    if all(a.shape == arrays[0].shape for a in arrays):  # the one-shape fast path
        return np.stack(arrays).astype(dtype, copy=False)
    height = max(a.shape[0] for a in arrays)
    width = max(a.shape[1] for a in arrays)
    out = np.full((len(arrays), height, width), fill, dtype=dtype)
    for i, a in enumerate(arrays):
        out[i, : a.shape[0], : a.shape[1]] = a
    return out


def _read_mask(path: str, shape: tuple[int, ...]) -> np.ndarray:
    if not path:
        return np.full(shape, MASK_UNLABELLED, dtype=np.uint8)
    mask = read_volume(path)
    if mask.shape != shape:
        raise InputError(f"{path}: mask shape {mask.shape} differs from image shape {shape}")
    if mask.dtype.kind == "f" and not np.all(mask == np.round(mask)):
        raise InputError(f"{path}: mask has non-integer values")
    if mask.dtype == bool:
        mask = mask.astype(np.uint8)
    values = np.unique(mask)
    if values.min() < 0 or values.max() >= MASK_UNLABELLED:
        raise InputError(
            f"{path}: mask values must be class labels in 0..{MASK_UNLABELLED - 1}, "
            f"got {values.min()}..{values.max()}"
        )
    return mask.astype(np.uint8)


def load_stack(images_path: str | os.PathLike, mmap: bool = True) -> np.ndarray:
    """Open an image or tile stack (N, C, H, W), memory-mapped by default."""
    path = Path(images_path)
    if not path.is_file():
        raise InputError(f"{path}: stack not found")
    try:
        stack = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except Exception as exc:
        raise InputError(f"{path}: unreadable stack ({str(exc).splitlines()[0]})") from None
    if stack.ndim != 4:
        raise InputError(f"{path}: expected a stack of shape (N, C, H, W), got {stack.shape}")
    return stack
