"""Morphological descriptors of two-phase micrographs.

Conventions (scikit-image style): inputs are boolean images, ``True`` = the phase measured
(pores), of shape (H, W) or a batch (..., H, W); outputs are floats or arrays over the batch.
Distances are in pixels unless a ``pixel_size`` is given; then lengths are in that unit.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft
from scipy.optimize import minimize_scalar

_WORKERS = -1  # scipy.fft threads: all cores


def _as_binary(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim < 2:
        raise ValueError(
            f"expected an image (H, W) or a batch (..., H, W), got shape {image.shape}"
        )
    if image.dtype != bool:
        values = np.unique(image)
        if not np.isin(values, (0, 1)).all():
            raise ValueError("expected a binary image (bool or 0/1), got other values")
        image = image.astype(bool)
    return image


def porosity(image: np.ndarray) -> float | np.ndarray:
    """Area fraction of the ``True`` phase, per image.

    Parameters
    ----------
    image : (H, W) or (..., H, W) bool array, True = pore.

    Returns
    -------
    float for one image, else an array of shape ``image.shape[:-2]``. Dimensionless.
    """
    phi = _as_binary(image).mean(axis=(-2, -1))
    return float(phi) if np.ndim(phi) == 0 else phi


def specific_surface_area(image: np.ndarray, pixel_size: float = 1.0) -> float | np.ndarray:
    """Interface length per unit area, L_A, of the ``True`` phase.

    Estimator: stereology's intercept count (Crofton formula), L_A = (pi/2) P_L, where P_L is the
    number of phase changes per unit length of test line. P_L is averaged over four line
    directions (0, 90, 45, 135 degrees; diagonal steps are sqrt(2) pixels long), which makes
    the estimate nearly isotropic on a pixel grid; for a disk of radius R it returns 2 pi R / A.
    Only pairs of pixels inside the image count, so the image border is not an interface.
    For an isotropic 3-D structure the surface per volume is S_V = (4/pi) L_A.

    Parameters
    ----------
    image : ndarray of bool, shape (H, W) or (..., H, W)
        True = pore (the phase measured).
    pixel_size : float
        Side of a pixel, in the length unit wanted (e.g. µm).

    Returns
    -------
    float or ndarray of shape ``image.shape[:-2]``
        L_A in 1 / (unit of ``pixel_size``).
    """
    im = _as_binary(image)
    counts_per_length = []
    for a, b, step in (
        (im[..., :, 1:], im[..., :, :-1], 1.0),
        (im[..., 1:, :], im[..., :-1, :], 1.0),
        (im[..., 1:, 1:], im[..., :-1, :-1], np.sqrt(2.0)),
        (im[..., 1:, :-1], im[..., :-1, 1:], np.sqrt(2.0)),
    ):
        changes = (a != b).sum(axis=(-2, -1))
        pairs = a.shape[-2] * a.shape[-1]
        counts_per_length.append(changes / (pairs * step))
    p_l = np.mean(counts_per_length, axis=0) / pixel_size
    l_a = np.pi / 2 * p_l
    return float(l_a) if np.ndim(l_a) == 0 else l_a


def two_point_correlation_map(
    image: np.ndarray, periodic: bool = False, r_max: int | None = None
) -> np.ndarray:
    """S2 for every lattice vector (dy, dx) with |dy|, |dx| <= r_max, by FFT.

    S2(d) is the probability that x and x + d both lie in the ``True`` phase. Non-periodic
    images are zero-padded (by ``r_max``, enough for every lag kept) and each lag is divided by
    the number of pixel pairs that fit inside the image, (H - |dy|)(W - |dx|), an unbiased
    estimate. Periodic images wrap around.

    Parameters
    ----------
    image : ndarray of bool, shape (H, W) or (..., H, W)
        True = pore.
    periodic : bool
        Treat the image as periodic (wrap-around) instead of zero-padding.
    r_max : int, optional
        Largest lag in pixels, below min(H, W); default min(H, W) // 2.

    Returns
    -------
    ndarray of float64, shape (..., 2 r_max + 1, 2 r_max + 1)
        S2 (dimensionless) centred on d = 0; entry [r_max + dy, r_max + dx] is lag (dy, dx).
    """
    im = _as_binary(image)
    h, w = im.shape[-2:]
    r_max = min(h, w) // 2 if r_max is None else int(r_max)
    if not 0 <= r_max < min(h, w):
        raise ValueError(f"r_max must be in 0..{min(h, w) - 1}, got {r_max}")
    x = im.astype(np.float64)
    if periodic:
        shape = (h, w)
    else:
        shape = (sfft.next_fast_len(h + r_max, real=True), sfft.next_fast_len(w + r_max, real=True))
    spectrum = sfft.rfft2(x, s=shape, workers=_WORKERS)
    auto = sfft.irfft2(spectrum.real**2 + spectrum.imag**2, s=shape, workers=_WORKERS)
    lags = np.arange(-r_max, r_max + 1)
    window = auto[..., lags[:, None] % shape[0], lags[None, :] % shape[1]]
    if periodic:
        return window / (h * w)
    pairs = (h - np.abs(lags))[:, None] * (w - np.abs(lags))[None, :]
    return window / pairs


def radial_average(
    s2_map: np.ndarray, bins: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Average a centred lag map over rings of lag length.

    Default bins hold the lattice vectors with k - 1/2 <= |d| < k + 1/2 for k = 0..R, reported at
    r = k. Explicit ``bins`` are edges [b_i, b_i+1), reported at their centres (as PoreSpy does).
    Every lattice vector in a ring counts once.

    Parameters
    ----------
    s2_map : ndarray, shape (..., 2R + 1, 2R + 1)
        A map centred on lag 0, as from :func:`two_point_correlation_map`.
    bins : ndarray, optional
        Ring edges in pixels.

    Returns
    -------
    r : ndarray, shape (B,)
        Ring radii in pixels.
    s2 : ndarray, shape (..., B)
        The map's mean over each ring (NaN for an empty ring).
    """
    size = s2_map.shape[-1]
    radius = size // 2
    dy, dx = np.meshgrid(
        np.arange(-radius, radius + 1), np.arange(-radius, radius + 1), indexing="ij"
    )
    dist = np.hypot(dy, dx).ravel()
    if bins is None:
        edges = np.arange(radius + 2) - 0.5
        r = np.arange(radius + 1, dtype=np.float64)
    else:
        edges = np.asarray(bins, dtype=np.float64)
        r = (edges[1:] + edges[:-1]) / 2
    which = np.searchsorted(edges, dist, side="right") - 1
    inside = (which >= 0) & (which < len(edges) - 1)
    which = which[inside]
    counts = np.bincount(which, minlength=len(edges) - 1).astype(np.float64)
    flat = s2_map.reshape(-1, size * size)[:, inside]
    nb = len(edges) - 1
    # one bincount over the whole batch: offset each image's bins by its row number
    offset = (np.arange(len(flat))[:, None] * nb + which[None, :]).ravel()
    sums = np.bincount(offset, weights=flat.ravel(), minlength=len(flat) * nb).reshape(-1, nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        s2 = sums / counts
    return r, s2.reshape(s2_map.shape[:-2] + (nb,))


def two_point_correlation(
    image: np.ndarray,
    periodic: bool = False,
    r_max: int | None = None,
    bins: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged two-point correlation S2(r) of the ``True`` phase.

    Parameters
    ----------
    image : (H, W) or (..., H, W) bool, True = pore.
    periodic : treat the image as periodic (wrap-around) instead of zero-padding.
    r_max : largest lag in pixels; default min(H, W) // 2.
    bins : optional ring edges in pixels (see :func:`radial_average`).

    Returns
    -------
    r : (R,) lag distances in pixels.
    s2 : (..., R) S2 at each r; S2(0) = porosity, S2 -> porosity**2 for large r in a random medium.
    """
    im = _as_binary(image)
    if bins is not None:
        r_max = int(np.ceil(np.max(bins)))
        r_max = min(r_max, min(im.shape[-2:]) - 1)
    return radial_average(two_point_correlation_map(im, periodic=periodic, r_max=r_max), bins)


def correlation_length(
    r: np.ndarray, s2: np.ndarray, porosity: float | np.ndarray, cutoff: float = 0.05
) -> float | np.ndarray:
    """Correlation length lambda of exp(-r / lambda) fitted to S2.

    The normalised autocovariance f(r) = (S2(r) - phi^2) / (phi - phi^2) starts at 1; lambda
    minimises the squared error of exp(-r / lambda) against f over the leading run of lags where
    f > ``cutoff`` (the tail is noise-dominated and would bias the fit).

    Parameters
    ----------
    r : ndarray, shape (R,)
        Lags, in pixels or a length unit.
    s2 : ndarray, shape (R,) or (..., R)
        S2 at each lag, one curve or a batch.
    porosity : float or ndarray of shape ``s2.shape[:-1]``
        phi of each curve's image.
    cutoff : float
        Lags after f first drops to ``cutoff`` are left out of the fit.

    Returns
    -------
    float or ndarray of shape ``s2.shape[:-1]``
        lambda in the unit of ``r``; NaN for an image with a single phase (phi = 0 or 1).
    """
    r = np.asarray(r, dtype=np.float64)
    s2 = np.asarray(s2, dtype=np.float64)
    phi = np.broadcast_to(np.asarray(porosity, dtype=np.float64), s2.shape[:-1])
    flat_s2, flat_phi = s2.reshape(-1, s2.shape[-1]), phi.ravel()
    out = np.array([_fit_lambda(r, c, p, cutoff) for c, p in zip(flat_s2, flat_phi)])
    out = out.reshape(s2.shape[:-1])
    return float(out) if out.ndim == 0 else out


def normalised_autocovariance(s2: np.ndarray, porosity: float | np.ndarray) -> np.ndarray:
    """Normalised autocovariance of the ``True`` phase from its S2.

    Parameters
    ----------
    s2 : ndarray, shape (..., R)
        Two-point correlation curves.
    porosity : float or ndarray of shape ``s2.shape[:-1]``
        phi of each curve's image.

    Returns
    -------
    ndarray, shape (..., R)
        f(r) = (S2(r) - phi^2) / (phi - phi^2): 1 at r = 0, tends to 0 for uncorrelated points;
        dimensionless.
    """
    phi = np.asarray(porosity, dtype=np.float64)[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.asarray(s2) - phi**2) / (phi - phi**2)


def _fit_lambda(r: np.ndarray, s2: np.ndarray, phi: float, cutoff: float) -> float:
    if not 0 < phi < 1:
        return float("nan")
    f = normalised_autocovariance(s2, phi)
    below = np.flatnonzero(~(f > cutoff))
    end = below[0] if below.size else len(f)
    end = max(end, 2)  # at least r = 0 and one lag
    rr, ff = r[:end], f[:end]

    def loss(log_lam: float) -> float:
        return float(np.sum((ff - np.exp(-rr / np.exp(log_lam))) ** 2))

    span = max(rr[-1], r[1] if len(r) > 1 else 1.0)
    res = minimize_scalar(
        loss,
        bounds=(np.log(1e-3 * span), np.log(1e3 * span)),
        method="bounded",
        options={"xatol": 1e-8},
    )
    return float(np.exp(res.x))
