"""D4 (dihedral group of the square) augmentation: 4 rotations x optional flip.

Micrographs of isotropic materials have no preferred orientation, so the 8 symmetries of the
square are free extra data. Works on NumPy arrays and torch tensors; acts on the last two axes.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

D4_SIZE = 8
Array = TypeVar("Array")


def d4_transform(x: Array, k: int) -> Array:
    """Apply the ``k``-th element of D4 (0 = identity) to the last two axes of ``x``.

    ``k % 4`` quarter turns counter-clockwise, then a left-right flip when ``k >= 4``.
    """
    if not 0 <= k < D4_SIZE:
        raise ValueError(f"D4 element must be in 0..7, got {k}")
    if isinstance(x, np.ndarray):
        y = np.rot90(x, k % 4, axes=(-2, -1))
        return np.flip(y, axis=-1) if k >= 4 else y
    import torch

    y = torch.rot90(x, k % 4, dims=(-2, -1))
    return torch.flip(y, dims=(-1,)) if k >= 4 else y


def d4_inverse(k: int) -> int:
    """Index of the inverse element: rotations invert to the opposite turn, flips are their own."""
    return (4 - k) % 4 if k < 4 else k


def random_d4(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Apply an independent random D4 element to each item of a batch (N, ..., H, W)."""
    ks = rng.integers(0, D4_SIZE, size=len(batch))
    return np.stack([d4_transform(item, int(k)) for item, k in zip(batch, ks)])


def d4_transform_blocks(x: np.ndarray, k: int) -> np.ndarray:
    """The ``k``-th element of D4 on a grid of pixel blocks (..., d, d, H, W) — block (i, j)'s
    pixel (a, b) is pixel (i d + a, j d + b) of the (H d, W d) image: the grid and each block
    turn together, as the image would."""
    turned = d4_transform(x, k)
    return np.moveaxis(d4_transform(np.moveaxis(turned, (-4, -3), (-2, -1)), k), (-2, -1), (-4, -3))


def random_d4_windows(
    stacks: tuple[np.ndarray, ...],
    n: int,
    crop: int,
    rng: np.random.Generator,
    blocks: tuple[int, ...] = (),
) -> list[np.ndarray]:
    """``n`` random ``crop``² windows of random items, each in a random D4 orientation, cut at
    the same places from every stack of ``stacks`` (aligned (N, ..., H, W) arrays: images and
    their masks or targets); one (n, ..., crop, crop) array per stack, in its own dtype. The
    stacks at indices ``blocks`` hold pixel blocks (N, d, d, H, W) on the grid, turned with it
    (:func:`d4_transform_blocks`). Draws items, rows, columns, then orientations from ``rng``."""
    h, w = stacks[0].shape[-2:]
    idx = rng.integers(0, len(stacks[0]), n)
    ys, xs = rng.integers(0, h - crop + 1, n), rng.integers(0, w - crop + 1, n)
    ks = rng.integers(0, D4_SIZE, n)
    windows = list(zip(idx, ys, xs, ks))
    return [
        np.stack([(d4_transform_blocks if s in blocks else d4_transform)(
                      a[i, ..., y : y + crop, x : x + crop], int(k))
                  for i, y, x, k in windows])
        for s, a in enumerate(stacks)
    ]  # fmt: skip


def microscope_augment(
    image: np.ndarray,
    rng: np.random.Generator,
    *,
    counts: tuple[float, float] = (3.0, 40.0),
    blur_px: tuple[float, float] = (0.0, 3.0),
    jitter_px: tuple[float, float] = (0.0, 1.0),
    background: tuple[float, float] = (0.0, 0.3),
) -> np.ndarray:
    """Another day at the microscope for one STEM crop (H, W) in [0, 1]: a source-size blur
    (Gaussian, σ drawn from ``blur_px``), scan rows that jitter (AR(1) offsets, rms from
    ``jitter_px``), a smooth background with a slope (rms from ``background``, relative to the
    crop's mean) and shot noise at a dose drawn log-uniformly from ``counts`` (mean counts per
    pixel: the crop's mean grey level is that many counts), then the 1st-99.5th percentile
    normalisation ingest applies. Labels are not moved: the experiment's own row jitter does
    not move them either.
    """
    from scipy import ndimage

    from ..data.points import normalise_percentile
    from ..synth.stem import ar1_series, scan_row_jitter

    x = np.asarray(image, np.float64)
    h, w = x.shape
    x = ndimage.gaussian_filter(x, rng.uniform(*blur_px))
    x = scan_row_jitter(x, ar1_series(h, rng.uniform(*jitter_px), 0.5, rng))
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    slope = rng.standard_normal(2) @ np.stack([yy.ravel() - 0.5, xx.ravel() - 0.5])
    field = slope.reshape(h, w) + ndimage.zoom(rng.standard_normal((3, 3)), (h / 3, w / 3),
                                               order=3)[:h, :w]  # fmt: skip
    x = x + rng.uniform(*background) * x.mean() * field / (field.std() + 1e-12)
    dose = float(np.exp(rng.uniform(*np.log(counts))))
    mean = max(float(x.mean()), 1e-6)  # the crop's mean grey level is `dose` counts
    x = rng.poisson(np.clip(x, 0, None) / mean * dose) * mean / dose
    return normalise_percentile(x).astype(np.float32)
