"""Micrograph and sample-sheet I/O, and atomic writers.

Images are read as 2-D arrays (H, W), volumes (a multi-page TIFF, a 3-D NPY, a raw file) as
3-D arrays (D, H, W). Every writer goes through :func:`atomic_path`: the data
lands in a temporary file beside the target and is renamed over it only when complete, so a
killed job never leaves a half-written output behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import InputError

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".npy", ".raw", ".dm3", ".dm4", ".emd", ".ser")

# Sample-sheet columns: required ones, optional ones, and a free prefix for user labels.
SHEET_REQUIRED = ("path", "domain", "pixel_size")
SHEET_OPTIONAL = (
    "sample", "mask", "points", "class", "e11", "pixel_unit", "raw_shape", "raw_dtype",
)  # fmt: skip
SHEET_LABEL_PREFIX = "label_"


# --------------------------------------------------------------------------- atomic writes
@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left untouched.
    ``suffix`` defaults to the target's suffix so writers that dispatch on it still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=suffix or path.suffix or ".tmp", dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as a memory-mappable ``.npy`` file, atomically."""
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, np.ascontiguousarray(array))


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write several arrays into one ``.npz`` file, atomically."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)


def save_table(path: str | os.PathLike, table: pd.DataFrame) -> None:
    """Write a table as CSV (or TSV for a ``.tsv`` suffix), atomically."""
    sep = "\t" if Path(path).suffix == ".tsv" else ","
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep=sep, index=False)


def save_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def save_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write a 2-D image as TIFF, PNG (uint8/uint16/bool) or NPY, chosen by suffix, atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    with atomic_path(path) as tmp:
        if suffix in (".tif", ".tiff"):
            import tifffile

            tifffile.imwrite(tmp, image)
        elif suffix == ".png":
            from PIL import Image

            arr = image.astype(np.uint8) * 255 if image.dtype == bool else image
            Image.fromarray(arr).save(tmp, format="PNG")
        elif suffix == ".npy":
            np.save(tmp, image)
        else:
            raise InputError(
                f"{path}: unsupported image format {suffix!r} "
                f"(use one of {', '.join(IMAGE_SUFFIXES)})"
            )


# --------------------------------------------------------------------------- readers
def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a grey-level micrograph as a 2-D array (H, W), keeping its dtype.

    Supports TIFF (8/16-bit integer or float, via tifffile), PNG, NPY and the electron
    microscopes' .dm3/.dm4/.emd/.ser (through RosettaSciIO, :mod:`matgen.microscopy`). A
    trailing channel axis of size 1 is dropped; RGB(A) images are converted to luminance
    (ITU-R BT.601 weights). Raises :class:`InputError` naming the file for a missing,
    unreadable or truncated file, a volume, a wrong number of dimensions, an empty image, or
    NaN/inf pixels.
    """
    path = Path(path)
    image = _validate_pixels(_load_pixels(path), path)
    if image.ndim == 3:
        raise InputError(
            f"{path}: a volume ({' x '.join(map(str, image.shape))}), but a 2-D image is "
            f"required here"
        )
    return image


def read_volume(path: str | os.PathLike, raw_shape: str = "", raw_dtype: str = "") -> np.ndarray:
    """Read a micrograph that may be a volume: a 2-D (H, W) or 3-D (D, H, W) array.

    Volumes: multi-page TIFF stacks, 3-D NPY, a 3-D microscope file, or a headerless ``.raw``
    file, whose ``raw_shape`` ("D,H,W" or "DxHxW") and ``raw_dtype`` (a NumPy dtype such as
    ``uint16`` or ``<f4``) must be given. Errors as :func:`read_image`.
    """
    path = Path(path)
    return _validate_pixels(_load_pixels(path, raw_shape, raw_dtype), path)


def _load_pixels(path: Path, raw_shape: str = "", raw_dtype: str = "") -> np.ndarray:
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            import tifffile

            image = tifffile.imread(path)
        elif suffix == ".png":
            from PIL import Image

            with Image.open(path) as im:
                im.load()
                image = np.asarray(im)
        elif suffix == ".npy":
            image = np.load(path, allow_pickle=False)
        elif suffix == ".raw":
            image = _read_raw(path, raw_shape, raw_dtype)
        elif suffix in (".dm3", ".dm4", ".emd", ".ser"):
            from .microscopy import read_microscope_file

            image = read_microscope_file(path)[0]
        else:
            raise InputError(
                f"{path}: unsupported image format {suffix!r} "
                f"(use one of {', '.join(IMAGE_SUFFIXES)})"
            )
    except InputError:
        raise
    except Exception as exc:  # every decoder has its own exception zoo
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: unreadable or truncated image ({reason})") from None
    return np.asarray(image)


def _read_raw(path: Path, raw_shape: str, raw_dtype: str) -> np.ndarray:
    if not raw_shape or not raw_dtype:
        raise InputError(
            f"{path}: a .raw volume needs raw_shape (D,H,W) and raw_dtype in the sheet"
        )
    try:
        shape = tuple(int(v) for v in str(raw_shape).replace("x", ",").split(","))
        dtype = np.dtype(str(raw_dtype))
    except (TypeError, ValueError):
        raise InputError(
            f"{path}: raw_shape {raw_shape!r} / raw_dtype {raw_dtype!r} are not a shape and a "
            f"NumPy dtype"
        ) from None
    expected = int(np.prod(shape)) * dtype.itemsize
    if path.stat().st_size != expected:
        raise InputError(
            f"{path}: {path.stat().st_size} bytes, but shape {shape} of {dtype} needs {expected}"
        )
    return np.fromfile(path, dtype=dtype).reshape(shape)


def _validate_pixels(image: np.ndarray, path: Path) -> np.ndarray:
    """A 2-D image or a 3-D volume of finite numbers; RGB(A) -> luminance."""
    if image.size == 0:
        raise InputError(f"{path}: unreadable or truncated image (no pixel data)")
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    elif image.ndim == 3 and image.shape[-1] in (3, 4) and image.shape[0] > 4:
        rgb = image[..., :3].astype(np.float64)
        image = (rgb @ np.array([0.299, 0.587, 0.114])).astype(np.float32)
    if image.ndim == 4 and image.shape[1] == 1:  # a stack saved with a channel axis
        image = image[:, 0]
    if image.ndim not in (2, 3):
        raise InputError(
            f"{path}: expected a 2-D grey-level image or a 3-D volume, got shape {image.shape}"
        )
    if image.dtype.kind not in "biuf":
        raise InputError(f"{path}: unsupported pixel type {image.dtype}")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise InputError(f"{path}: image has NaN or inf pixels")
    return image


def to_unit_float(image: np.ndarray) -> np.ndarray:
    """Map an image to float32 in [0, 1]: integers by their dtype's range, floats unchanged."""
    if image.dtype == bool:
        return image.astype(np.float32)
    if image.dtype.kind in "ui":
        info = np.iinfo(image.dtype)
        return ((image.astype(np.float32) - info.min) / (info.max - info.min)).astype(np.float32)
    return image.astype(np.float32)


def read_sample_sheet(path: str | os.PathLike, unit: str = "um") -> pd.DataFrame:
    """Read and validate a sample sheet (TSV; CSV accepted by suffix).

    Columns: ``path`` (image or volume file, relative to the sheet), ``domain`` (e.g. ``sem``,
    ``microct``), ``pixel_size`` (> 0, in the row's ``pixel_unit``, else ``unit``; empty = read
    it from the file's metadata, see :mod:`matgen.microscopy`), and optionally ``sample``,
    ``mask`` (label image of the same size), ``points`` (CSV of point labels), ``class``,
    ``e11``, ``raw_shape`` / ``raw_dtype`` (of a headerless .raw volume) and any ``label_*``
    column. Paths are returned absolute. Raises :class:`InputError` naming the sheet and the
    row for an empty sheet, unknown or missing columns, missing files, bad pixel sizes, an
    empty pixel size the file does not record, or one that differs from the file's by more
    than 1 %.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: sample sheet not found")
    sep = "," if path.suffix.lower() == ".csv" else "\t"
    try:
        sheet = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, comment="#")
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: sample sheet is empty") from None
    except Exception as exc:
        raise InputError(f"{path}: unreadable sample sheet ({str(exc).splitlines()[0]})") from None
    sheet.columns = [c.strip() for c in sheet.columns]
    allowed = set(SHEET_REQUIRED) | set(SHEET_OPTIONAL)
    for column in sheet.columns:
        if column not in allowed and not column.startswith(SHEET_LABEL_PREFIX):
            raise InputError(
                f"{path}: unknown column {column!r} (allowed: "
                f"{', '.join(SHEET_REQUIRED + SHEET_OPTIONAL)}, {SHEET_LABEL_PREFIX}*)"
            )
    for column in SHEET_REQUIRED:
        if column not in sheet.columns:
            raise InputError(f"{path}: missing required column {column!r}")
    if len(sheet) == 0:
        raise InputError(f"{path}: sample sheet is empty (no rows)")
    base = path.parent
    rows = []
    for i, row in sheet.iterrows():
        where = f"{path}: row {i + 2}"  # +2: header line and 1-based numbering, as an editor shows
        cell = row["pixel_size"].strip()
        pixel_size = float("nan")
        if cell:
            try:
                pixel_size = float(cell)
            except ValueError:
                raise InputError(f"{where}: pixel_size {cell!r} is not a number") from None
            if not np.isfinite(pixel_size) or pixel_size <= 0:
                raise InputError(f"{where}: pixel_size must be a positive number, got {pixel_size}")
        if not row["domain"].strip():
            raise InputError(f"{where}: empty domain")
        record = dict(row)
        # label_*_mask columns (e.g. label_exact_mask, a scoring-only mask) are files too
        files = ["path", "mask", "points"] + [
            c for c in sheet.columns if c.startswith(SHEET_LABEL_PREFIX) and c.endswith("_mask")
        ]
        for column in files:
            value = record.get(column, "")
            if value:
                file = Path(value) if Path(value).is_absolute() else base / value
                if not file.is_file():
                    raise InputError(f"{where}: {column} file {value!r} not found")
                record[column] = str(file.resolve())
        if record.get("path", ""):
            pixel_size = _checked_pixel_size(
                where, record["path"], pixel_size, record.get("pixel_unit") or unit
            )
        record["pixel_size"] = pixel_size
        if "e11" in record and record["e11"] != "":
            try:
                record["e11"] = float(record["e11"])
            except ValueError:
                raise InputError(f"{where}: e11 {record['e11']!r} is not a number") from None
        record["row"] = i + 2
        rows.append(record)
    table = pd.DataFrame(rows)
    if "sample" not in table.columns:
        table["sample"] = [Path(p).stem for p in table["path"]]
    return table


def _checked_pixel_size(where: str, image: str, sheet_value: float, unit: str) -> float:
    """The sheet's pixel size, or the file's where the sheet leaves it empty (NaN); the two
    must agree within 1 % where both exist."""
    from .microscopy import pixel_size_from_metadata

    try:
        recorded = pixel_size_from_metadata(image, unit)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    name = Path(image).name
    if np.isnan(sheet_value):
        if recorded is None:
            raise InputError(
                f"{where}: pixel_size is empty and {name} records none in its metadata"
            )
        return recorded
    if recorded is not None and abs(recorded - sheet_value) > 0.01 * sheet_value:
        raise InputError(
            f"{where}: pixel_size {sheet_value:g} {unit} differs from the {recorded:.6g} {unit} "
            f"that {name} records in its metadata (more than 1 %)"
        )
    return sheet_value
