"""Grey-level micrographs -> binary pore images."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

from ..errors import InputError


def smooth_images(images: np.ndarray, smooth_sigma: float, ndim: int = 2) -> np.ndarray:
    """Images (..., H, W) as float32, each Gaussian-smoothed by ``smooth_sigma`` px (0: as
    they are; with ``ndim=3``, volumes (..., D, H, W)) — what :func:`binarise_pores` cuts."""
    x = np.asarray(images, dtype=np.float32)
    if smooth_sigma > 0:
        sigma = (0,) * (x.ndim - ndim) + (smooth_sigma,) * ndim
        x = ndimage.gaussian_filter(x, sigma)
    return x


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
    x = smooth_images(images, smooth_sigma, ndim)
    if threshold == "otsu":
        level = float(threshold_otsu(x)) if x.max() > x.min() else float(x.max())
    else:
        try:
            level = float(threshold)
        except (TypeError, ValueError):
            raise InputError(f"threshold must be 'otsu' or a number, got {threshold!r}") from None
    return x < level, level


def otsu_split(values: np.ndarray) -> float:
    """Otsu's two-class level of a 1-D sample, on the sorted values themselves (no histogram
    bins): the cut that maximises the between-class variance, placed midway between the two
    values it separates — so a clean gap between two populations is cut in its middle, not at
    the top of the lower one as a binned level sits. ``values`` in any unit; returns the level
    in that unit.
    """
    v = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if len(v) < 2 or v[0] == v[-1]:
        raise InputError(f"Otsu's level needs at least two distinct values, got {len(v)}")
    n, k = len(v), np.arange(1, len(v))  # k: size of the lower class
    below = np.cumsum(v)[:-1]
    between = k * (n - k) * (below / k - (v.sum() - below) / (n - k)) ** 2
    between[v[1:] == v[:-1]] = -np.inf  # equal values cannot fall on both sides
    best = int(np.argmax(between))
    return float(0.5 * (v[best] + v[best + 1]))
