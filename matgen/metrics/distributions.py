"""Distances between distributions of descriptors, and the diversity of an image set."""

from __future__ import annotations

import numpy as np
from scipy import stats


def distribution_distances(real: np.ndarray, synthetic: np.ndarray) -> dict[str, float]:
    """Two-sample comparison of one scalar descriptor (e.g. per-tile porosity).

    Parameters
    ----------
    real, synthetic : ndarray, shape (N,) and (M,)
        The descriptor per tile of each set, in one unit; NaNs are dropped.

    Returns
    -------
    dict
        ``ks_statistic`` (Kolmogorov–Smirnov D = max |ΔCDF|, unitless, 0 = identical) and
        ``ks_pvalue``, ``wasserstein`` (1-Wasserstein, earth mover's distance, in the
        descriptor's unit), ``mean_real``, ``mean_synthetic``, ``mean_difference`` (synthetic −
        real, in its unit) and ``mean_ratio`` (synthetic / real).
    """
    a = np.asarray(real, float)
    b = np.asarray(synthetic, float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) == 0 or len(b) == 0:
        raise ValueError("distribution_distances needs at least one finite value on each side")
    ks = stats.ks_2samp(a, b)
    return {
        "ks_statistic": float(ks.statistic),
        "ks_pvalue": float(ks.pvalue),
        "wasserstein": float(stats.wasserstein_distance(a, b)),
        "mean_real": float(a.mean()),
        "mean_synthetic": float(b.mean()),
        "mean_difference": float(b.mean() - a.mean()),
        "mean_ratio": float(b.mean() / a.mean()) if a.mean() != 0 else float("nan"),
    }


def pairwise_diversity(
    images: np.ndarray, max_pairs: int = 4000, pool: int = 2, seed: int = 0
) -> float:
    """Mean Euclidean distance between pairs of images, per pixel (RMS difference).

    Images are first average-pooled by ``pool`` so pixel noise counts less than structure. A
    mode-collapsed generator scores far below a real set; compare a synthetic set with the real
    one by the ratio of the two.

    Parameters
    ----------
    images : ndarray, shape (N, H, W) or (N, C, H, W)
        Grey levels in [0, 1].
    max_pairs : int
        All pairs when there are fewer, else this many random ones (seeded).
    pool : int
        Side of the average-pooling window, in pixels.
    seed : int
        Seed of the pair draw.

    Returns
    -------
    float
        RMS grey-level difference per pixel, in grey-level units.
    """
    x = np.asarray(images, np.float32)
    if x.ndim == 3:
        x = x[:, None]
    n, c, h, w = x.shape
    if n < 2:
        raise ValueError("pairwise_diversity needs at least two images")
    hp, wp = h // pool * pool, w // pool * pool
    x = x[:, :, :hp, :wp].reshape(n, c, hp // pool, pool, wp // pool, pool).mean((3, 5))
    x = x.reshape(n, -1)
    i, j = np.triu_indices(n, 1)
    if len(i) > max_pairs:
        pick = np.random.default_rng(seed).choice(len(i), max_pairs, replace=False)
        i, j = i[pick], j[pick]
    return float(np.sqrt(((x[i] - x[j]) ** 2).mean(1)).mean())


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets.

    The FID formula, ‖μa − μb‖² + Tr(Σa + Σb − 2 (Σa Σb)^½), here on features of our own CNN
    judge rather than a downloaded Inception network, so values compare sets within this study
    only.

    Parameters
    ----------
    features_a, features_b : ndarray, shape (N, F) and (M, F)
        Feature vectors of the two sets.

    Returns
    -------
    float
        The distance, in squared feature units (0 for identical Gaussians).
    """
    from scipy import linalg

    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("frechet_distance needs at least two samples per set")
    mu_a, mu_b = a.mean(0), b.mean(0)
    # a small ridge keeps the matrix square root defined when a set has fewer samples than
    # feature dimensions (singular covariance)
    ridge = 1e-6 * np.eye(a.shape[1])
    cov_a, cov_b = np.cov(a, rowvar=False) + ridge, np.cov(b, rowvar=False) + ridge
    root = np.real(linalg.sqrtm(cov_a @ cov_b))
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def latent_share_of_variance(maps: np.ndarray) -> float:
    """How much of a generator's output the latent decides, against its other randomness.

    ``maps[i, j]`` is the output (e.g. a pore indicator map) for latent i and noise draw j. The
    pixel-wise variance over all (i, j) splits into the variance over i of the mean over j
    (what the latent sets) and the mean over i of the variance over j (what the noise sets);
    this is the first part's share, averaged over pixels before the division. 1: the noise
    changes nothing; 0: the latent changes nothing. With a finite number of noise draws n the
    latent's part includes 1/n of the noise's, so an estimate near 1/n means "noise only".

    Parameters
    ----------
    maps : ndarray, shape (n_latents, n_noise, ...)
        At least 2 latents and 2 noise draws; any values (binary maps give the share of the
        pore-layout variance).

    Returns
    -------
    float
        Dimensionless share in [0, 1]; NaN where the maps do not vary at all.
    """
    x = np.asarray(maps, dtype=np.float64)
    if x.ndim < 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"expected (n_latents >= 2, n_noise >= 2, ...), got shape {x.shape}")
    total = x.reshape(-1, *x.shape[2:]).var(axis=0).mean()
    latent = x.mean(axis=1).var(axis=0).mean()
    return float(latent / total) if total > 0 else float("nan")


def orientation_nonuniformity(
    images: np.ndarray, grey_range: tuple[float, float], boundary_level: float
) -> float:
    """1-Wasserstein distance between a set's grain orientations and a uniform distribution.

    Parameters
    ----------
    images : ndarray, shape (N, ...)
        Grain maps in [0, 1] whose grey level encodes each grain's orientation linearly.
    grey_range : (float, float)
        Grey levels of orientation 0 and of a full period (e.g. ψ = 0° and ψ → 180°).
    boundary_level : float
        Pixels at or below it are boundaries and left out.

    Returns
    -------
    float
        W1 between the grain pixels' orientations as a fraction of the period (clipped to
        [0, 1]) and U(0, 1), pooled over the set: 0 for uniformly random orientations (area-
        weighted), up to 0.5 when every grain has one orientation. Unitless (period fraction).
    """
    lo, hi = grey_range
    grey = np.asarray(images, np.float64)
    u = np.sort(np.clip((grey[grey > boundary_level] - lo) / (hi - lo), 0.0, 1.0))
    if len(u) == 0:
        return float("nan")
    return float(np.abs(u - (np.arange(len(u)) + 0.5) / len(u)).mean())
