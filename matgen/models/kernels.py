"""Fixed filter taps, and the Gaussian blur made of them, shared by models and losses."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


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


def gaussian_blur(images: torch.Tensor, sigma: float, radius: int | None = None) -> torch.Tensor:
    """Each channel of images (N, C, H, W) blurred by a Gaussian of ``sigma`` px, separable,
    reflecting edges; the kernel cut at ``radius`` px (None: ⌈3 ``sigma``⌉), normalised."""
    kernel = gaussian_taps(sigma, radius, images.device, images.dtype)
    kernel = kernel / kernel.sum()
    radius = (kernel.numel() - 1) // 2
    c = images.shape[1]
    images = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    images = F.conv2d(images, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(images, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
