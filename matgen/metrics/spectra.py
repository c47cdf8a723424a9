"""Radially averaged power spectra: texture, noise and artefacts that scalar descriptors miss.

Speckle and checkerboard artefacts of a generator, or missing detector noise, change the power
at high spatial frequencies while porosity or S2 barely move; comparing spectra of real and
synthetic images, frequency by frequency, shows them.
"""

from __future__ import annotations

import numpy as np


def radial_power_spectrum(
    images: np.ndarray, pixel_size: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Mean radially averaged power spectrum of a set of grey-level images.

    Each image has its mean removed and is multiplied by a 2-D Hann window (so the image
    border does not add a cross of spurious power); |FFT|² is averaged over the set, then over
    rings of integer frequency index k = 1 .. N/2 (cycles per image side).

    Parameters
    ----------
    images : ndarray, shape (N, H, W) or (N, 1, H, W)
        Grey levels, square images (H = W).
    pixel_size : float
        Side of a pixel in the length unit wanted.

    Returns
    -------
    frequency : ndarray, shape (H // 2,)
        Ring centres in cycles per unit length (k / (H * pixel_size)); the last is Nyquist.
    power : ndarray, shape (H // 2,)
        Mean power per ring (grey level² per frequency cell, with the window's normalisation),
        comparable between sets of the same image size.
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 4:
        x = x[:, 0]
    if x.ndim != 3 or x.shape[1] != x.shape[2]:
        raise ValueError(f"expected square images (N, H, W), got shape {x.shape}")
    n = x.shape[-1]
    window = np.outer(np.hanning(n), np.hanning(n))
    x = (x - x.mean(axis=(1, 2), keepdims=True)) * window
    power = (np.abs(np.fft.fft2(x)) ** 2).mean(0) / np.square(window).sum()
    k = np.fft.fftfreq(n) * n
    radius = np.rint(np.hypot(k[:, None], k[None, :])).astype(int).ravel()
    keep = (radius >= 1) & (radius <= n // 2)
    sums = np.bincount(radius[keep], weights=power.ravel()[keep], minlength=n // 2 + 1)
    counts = np.bincount(radius[keep], minlength=n // 2 + 1)
    rings = np.arange(1, n // 2 + 1)
    return rings / (n * pixel_size), sums[1:] / counts[1:]


def spectrum_log_ratio(real: np.ndarray, synthetic: np.ndarray) -> np.ndarray:
    """log10 of synthetic over real power, per frequency ring (0 = same power; +1 = ten times
    more, e.g. speckle at high frequency; −1 = ten times less, e.g. missing noise).

    Parameters
    ----------
    real, synthetic : ndarray, shape (K,)
        Spectra of :func:`radial_power_spectrum` on the same frequency rings.

    Returns
    -------
    ndarray, shape (K,)
        Decades of difference, dimensionless.
    """
    real = np.asarray(real, float)
    synthetic = np.asarray(synthetic, float)
    if real.shape != synthetic.shape:
        raise ValueError(f"spectra on different rings: {real.shape} vs {synthetic.shape}")
    tiny = 1e-30
    return np.log10(np.maximum(synthetic, tiny) / np.maximum(real, tiny))


# Immerkær's 3 × 3 mask: the difference of two Laplacians, which cancels any signal that is
# locally linear, so what is left on a smooth image is the white noise.
_NOISE_MASK = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])


def detector_noise_sd(images: np.ndarray) -> np.ndarray:
    """Standard deviation of white (pixel-independent) noise in each image, estimated from the
    image alone by Immerkær's method (CVIU 64, 300-302, 1996): the mean absolute response to a
    3 × 3 mask that is zero on locally linear signal, times √(π/2) / 6 (Gaussian noise).

    Structure with strong curvature at the pixel scale (edges, blur under ~1 px) adds to the
    estimate, so it is an upper bound on such images; on the embedded SEM tiles (noise sd 0.03
    added after a 0.7-px blur) it reads 0.031 ± 0.001.

    Parameters
    ----------
    images : ndarray, shape (H, W), (N, H, W) or (N, 1, H, W)
        Grey levels, each image at least 3 × 3 px.

    Returns
    -------
    ndarray, shape () or (N,)
        Noise standard deviation per image, in the images' grey-level units.
    """
    x = np.asarray(images, dtype=np.float64)
    single = x.ndim == 2
    if x.ndim == 4:
        x = x[:, 0]
    x = x[None] if single else x
    if x.ndim != 3 or min(x.shape[1:]) < 3:
        raise ValueError(f"expected images (N, H, W) of at least 3 x 3 px, got shape {x.shape}")
    response = sum(
        _NOISE_MASK[i, j] * x[:, i : x.shape[1] - 2 + i, j : x.shape[2] - 2 + j]
        for i in range(3)
        for j in range(3)
    )
    sd = np.sqrt(np.pi / 2) / 6 * np.abs(response).mean(axis=(1, 2))
    return sd[0] if single else sd
