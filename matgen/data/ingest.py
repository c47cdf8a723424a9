"""Sample sheet -> one validated image stack per domain.

Output: ``images.npy`` (N, 1, H, W) float32 in [0, 1], ``masks.npy`` (N, H, W) uint8 with
:data:`MASK_UNLABELLED` where a row has no mask, and a table with one row per image.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..io import read_image, read_sample_sheet, save_npy, save_table, to_unit_float

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
) -> pd.DataFrame:
    """Read every image of ``domain`` listed in ``sample_sheet`` into one stack.

    All images of a domain must share one shape and, unless ``uniform_pixel_size`` is False
    (e.g. RVEs of different physical size imaged at one pixel count), one pixel size; integer
    images are scaled by their dtype's range to [0, 1]. Masks are integer label images (0..254)
    of the same shape. With ``classes``, every row's ``class`` must be one of them; with
    ``require_e11`` every row needs a numeric ``e11``. With ``mask_classes`` (names of the
    segmentation classes, label = index) every mask value must be a class label and every class
    must occur in some mask. Nothing is written unless every row is valid. Returns the table
    written to ``table_out``.
    """
    sheet = read_sample_sheet(sample_sheet)
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
    images, masks = [], []
    for _, row in rows.iterrows():
        image = read_image(row["path"])
        if images and image.shape != images[0].shape:
            raise InputError(
                f"{sample_sheet}: row {row['row']}: {row['path']}: shape "
                f"{image.shape} differs from {images[0].shape} of {rows['path'][0]}"
            )
        images.append(to_unit_float(image))
        masks.append(_read_mask(row.get("mask", ""), image.shape))
        if mask_classes is not None and row.get("mask", ""):
            values = np.unique(masks[-1])
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
    table = rows.drop(columns=["domain"]).assign(
        domain=domain,
        index=np.arange(len(rows)),
        height=images[0].shape[0],
        width=images[0].shape[1],
        has_mask=[bool(m) for m in rows.get("mask", [""] * len(rows))],
    )
    save_npy(images_out, np.stack(images)[:, None])
    save_npy(masks_out, np.stack(masks))
    save_table(table_out, table)
    return table


def _read_mask(path: str, shape: tuple[int, int]) -> np.ndarray:
    if not path:
        return np.full(shape, MASK_UNLABELLED, dtype=np.uint8)
    mask = read_image(path)
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
