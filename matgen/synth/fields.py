"""Random two-phase media whose statistics are known in closed form.

Used by the embedded-default generators and as ground truth in metric tests.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def poisson_line_mosaic(
    shape: tuple[int, int], correlation_length: float, porosity: float, rng: np.random.Generator
) -> np.ndarray:
    """Binary image with an exactly exponential two-point correlation.

    An isotropic Poisson line process cuts the plane into cells; each cell is pore with
    probability ``porosity``. Two points a distance r apart lie in one cell with probability
    exp(-r / lambda), so S2(r) = phi^2 + (phi - phi^2) exp(-r / lambda) exactly, in pixels.
    (Crofton: lines hitting a segment of length r have measure 2r, so the line intensity per
    unit (p, theta) is 1 / (2 lambda).)
    """
    h, w = shape
    cy, cx = (h - 1) / 2, (w - 1) / 2
    half_diag = np.hypot(h, w) / 2 + 1
    intensity = 1.0 / (2.0 * correlation_length)
    n_lines = rng.poisson(intensity * 2 * half_diag * np.pi)
    theta = rng.uniform(0, np.pi, n_lines)
    p = rng.uniform(-half_diag, half_diag, n_lines)
    yy, xx = np.mgrid[0:h, 0:w]
    yy, xx = yy - cy, xx - cx
    cell = np.zeros((h, w), dtype=np.uint64)
    # A cell is the set of points on the same side of every line; hash the side pattern.
    weights = rng.integers(1, 2**63, size=n_lines, dtype=np.uint64)
    for t, q, wt in zip(theta, p, weights):
        side = (xx * np.cos(t) + yy * np.sin(t)) > q
        cell += side.astype(np.uint64) * wt
    _, labels = np.unique(cell, return_inverse=True)
    colour = rng.random(labels.max() + 1) < porosity
    return colour[labels.reshape(h, w)]


def gaussian_random_field(
    shape: tuple[int, ...], correlation_length: float | tuple[float, ...], rng: np.random.Generator
) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field with a Gaussian covariance.

    White noise smoothed by a Gaussian of standard deviation ``correlation_length`` pixels per
    axis (a tuple for anisotropy), reflecting at the borders, so no periodic artefacts appear.
    """
    field = ndimage.gaussian_filter(rng.standard_normal(shape), correlation_length, mode="reflect")
    return (field - field.mean()) / field.std()
