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
