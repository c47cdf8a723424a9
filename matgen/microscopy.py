"""What a microscope's own file says: its pixel size, and the formats of electron microscopes.

Pixel size is read from
- FEI / Thermo Fisher SEM TIFFs (tags 34680 / 34682: ``[Scan] PixelWidth``, metres) and Zeiss
  SEM TIFFs (tag 34118: ``AP_PIXEL_SIZE``), both parsed by tifffile;
- ImageJ TIFFs (what Fiji writes for a micro-CT stack): the ``unit`` and the X resolution tag;
- Gatan .dm3 / .dm4, Velox .emd and FEI .ser files, through RosettaSciIO (the HyperSpy I/O
  library; optional: ``pip install matgen[microscopy]``): the scale and unit of the last
  signal axis. Those files' images are read the same way.
Every length is converted to the study's unit (:func:`convert_length`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError

# metres per unit, under the names microscopes and users write
LENGTH_UNITS = {
    "m": 1.0, "mm": 1e-3, "um": 1e-6, "µm": 1e-6, "μm": 1e-6, "micron": 1e-6, "microns": 1e-6,
    "nm": 1e-9, "pm": 1e-12, "angstrom": 1e-10, "å": 1e-10, "a": 1e-10, "ang": 1e-10,
}  # fmt: skip

# suffix -> RosettaSciIO plugin module
MICROSCOPE_SUFFIXES = {
    ".dm3": "rsciio.digitalmicrograph",
    ".dm4": "rsciio.digitalmicrograph",
    ".emd": "rsciio.emd",
    ".ser": "rsciio.tia",
}


def convert_length(value: float, unit_from: str, unit_to: str) -> float:
    """``value`` in ``unit_from`` expressed in ``unit_to`` (m, mm, um/µm/micron, nm, pm,
    angstrom/Å); a unit outside the table raises :class:`InputError`."""
    factors = []
    for unit in (unit_from, unit_to):
        key = str(unit).strip().lower()
        if key not in LENGTH_UNITS:
            raise InputError(
                f"unknown length unit {unit!r} (use one of m, mm, um, nm, pm, angstrom)"
            )
        factors.append(LENGTH_UNITS[key])
    return float(value) * factors[0] / factors[1]


def pixel_size_from_metadata(path: str | os.PathLike, unit: str) -> float | None:
    """The pixel size the file's own metadata records, in ``unit``; None where it records none.

    A file that cannot be read raises :class:`InputError` naming it.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        found = _tiff_pixel_size(path)
    elif suffix in MICROSCOPE_SUFFIXES:
        found = read_microscope_file(path)[1]
    else:
        return None
    if found is None:
        return None
    value, file_unit = found
    return convert_length(value, file_unit, unit)


def _tiff_pixel_size(path: Path) -> tuple[float, str] | None:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            fei, sem, imagej = tif.fei_metadata, tif.sem_metadata, tif.imagej_metadata
            page = tif.pages.first
            x_resolution = page.tags.get("XResolution")
            x_resolution = x_resolution.value if x_resolution is not None else None
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: unreadable or truncated image ({reason})") from None
    if fei:  # FEI / Thermo: metres
        for section in ("Scan", "EScan", "Image"):
            width = (fei.get(section) or {}).get("PixelWidth")
            if width:
                return float(width), "m"
    if sem and "ap_pixel_size" in sem:  # Zeiss: ('Image Pixel Size', value, unit)
        _, value, unit = sem["ap_pixel_size"]
        return float(value), str(unit)
    if imagej and imagej.get("unit") and x_resolution:
        numerator, denominator = x_resolution  # pixels per unit
        unit = str(imagej["unit"]).replace("\\u00B5", "µ")
        if numerator > 0 and unit.lower() in LENGTH_UNITS:
            return denominator / numerator, unit
    return None


def read_microscope_file(path: str | os.PathLike) -> tuple[np.ndarray, tuple[float, str] | None]:
    """Image data (2-D, or a 3-D stack) of a .dm3/.dm4/.emd/.ser file, and its pixel size
    (value, unit) from the last signal axis (None when the axis is not a length).

    The first dataset with at least two signal axes is taken (a spectrum beside an image is
    skipped).
    """
    import importlib

    path = Path(path)
    module = MICROSCOPE_SUFFIXES[path.suffix.lower()]
    try:
        reader = importlib.import_module(module).file_reader
    except ImportError:
        raise InputError(
            f"{path}: reading {path.suffix} files needs RosettaSciIO "
            f"(pip install 'matgen[microscopy]')"
        ) from None
    try:
        datasets = reader(str(path))
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: unreadable microscope file ({reason})") from None
    for dataset in datasets if isinstance(datasets, list) else [datasets]:
        data = np.asarray(dataset.get("data"))
        axes: list[dict[str, Any]] = list(dataset.get("axes", []))
        signal = [a for a in axes if not a.get("navigate", False)]
        if data.ndim >= 2 and (len(signal) >= 2 or not axes):
            scale = _axis_length(signal[-1]) if signal else None
            return data, scale
    raise InputError(f"{path}: no image in the file (only spectra or empty datasets)")


def _axis_length(axis: dict[str, Any]) -> tuple[float, str] | None:
    unit = str(axis.get("units") or "").strip()
    scale = axis.get("scale")
    if not unit or unit.lower() not in LENGTH_UNITS or not scale or scale <= 0:
        return None
    return float(scale), unit
