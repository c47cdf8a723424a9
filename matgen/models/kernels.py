"""Fixed filter taps shared by models and losses."""

from __future__ import annotations

import math

import torch


def gaussian_taps(
    sigma: float,
    radius: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Unnormalised 1-D Gaussian taps exp(−x²/2σ²) at x = −radius … radius px, ``sigma`` in px
    (``radius`` None: ⌈3σ⌉, at least 1); each caller scales them as it needs (Σ = 1 for a blur,
    Σ² = 1 for a unit-variance random field)."""
    if radius is None:
        radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    return torch.exp(-0.5 * (x / sigma) ** 2)
