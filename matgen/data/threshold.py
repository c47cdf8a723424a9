"""Grey-level micrographs -> binary pore images."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

from ..errors import InputError


def binarise_pores(
    images: np.ndarray, threshold: str | float = "otsu", smooth_sigma: float = 0.0, ndim: int = 2
) -> tuple[np.ndarray, float]:
    """Segment dark pores: True where the (optionally smoothed) grey level is below a threshold.

    ``images`` is (..., H, W) in [0, 1] (with ``ndim=3``, volumes (..., D, H, W)).
    ``threshold='otsu'`` computes one Otsu threshold over the whole batch, so every tile of a
    data set is cut at the same grey level; a number is used as given. ``smooth_sigma``
    (pixels) applies a Gaussian filter per image (in 3-D, per volume) first, which keeps
    detector noise from fragmenting the pore boundaries. Returns (pores, threshold).
    """
    x = np.asarray(images, dtype=np.float32)
    if smooth_sigma > 0:
        sigma = (0,) * (x.ndim - ndim) + (smooth_sigma,) * ndim
        x = ndimage.gaussian_filter(x, sigma)
    if threshold == "otsu":
        level = float(threshold_otsu(x)) if x.max() > x.min() else float(x.max())
    else:
        try:
            level = float(threshold)
        except (TypeError, ValueError):
            raise InputError(f"threshold must be 'otsu' or a number, got {threshold!r}") from None
    return x < level, level
