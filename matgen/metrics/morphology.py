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


def _as_binary(image: np.ndarray, ndim: int = 2) -> np.ndarray:
    image = np.asarray(image)
    if ndim not in (2, 3):
        raise ValueError(f"ndim must be 2 (images) or 3 (volumes), got {ndim}")
    if image.ndim < ndim:
        shape = "(H, W)" if ndim == 2 else "(D, H, W)"
        raise ValueError(f"expected an array {shape} or a batch (..., {shape[1:]}, got shape "
                         f"{image.shape}")  # fmt: skip
    if image.dtype != bool:
        values = np.unique(image)
        if not np.isin(values, (0, 1)).all():
            raise ValueError("expected a binary image (bool or 0/1), got other values")
        image = image.astype(bool)
    return image


def _axes(ndim: int) -> tuple[int, ...]:
    return tuple(range(-ndim, 0))


def porosity(image: np.ndarray, ndim: int = 2) -> float | np.ndarray:
    """Area (2-D) or volume (3-D) fraction of the ``True`` phase, per image or volume.

    Parameters
    ----------
    image : (H, W) or (..., H, W) bool array, True = pore; with ``ndim=3`` a volume
        (D, H, W) or a batch (..., D, H, W).
    ndim : 2 or 3, the number of trailing spatial axes.

    Returns
    -------
    float for one image or volume, else an array over the batch axes. Dimensionless.
    """
    phi = _as_binary(image, ndim).mean(axis=_axes(ndim))
    return float(phi) if np.ndim(phi) == 0 else phi


# Test-line directions of the intercept counts: lattice vectors and their lengths in voxels.
# 2-D: the 4 directions of the 8-neighbourhood; 3-D: the 13 of the 26-neighbourhood (3 axes,
# 6 face diagonals, 4 body diagonals), which brings the estimate close to isotropic.
_DIRECTIONS = {
    2: [(0, 1), (1, 0), (1, 1), (1, -1)],
    3: [(0, 0, 1), (0, 1, 0), (1, 0, 0),
        (0, 1, 1), (0, 1, -1), (1, 0, 1), (1, 0, -1), (1, 1, 0), (1, -1, 0),
        (1, 1, 1), (1, 1, -1), (1, -1, 1), (1, -1, -1)],
}  # fmt: skip


def _intercepts_per_length(im: np.ndarray, ndim: int) -> np.ndarray:
    """P_L: phase changes per unit length of test line, averaged over the lattice directions
    (pairs of pixels that both lie inside the image only; the border is not an interface)."""
    counts = []
    for step in _DIRECTIONS[ndim]:
        a = im[(...,) + tuple(slice(max(s, 0), im.shape[-ndim + k] + min(s, 0))
                              for k, s in enumerate(step))]  # fmt: skip
        b = im[(...,) + tuple(slice(max(-s, 0), im.shape[-ndim + k] + min(-s, 0))
                              for k, s in enumerate(step))]  # fmt: skip
        pairs = np.prod(a.shape[-ndim:])
        changes = (a != b).sum(axis=_axes(ndim))
        counts.append(changes / (pairs * float(np.linalg.norm(step))))
    return np.mean(counts, axis=0)


def specific_surface_area(
    image: np.ndarray, pixel_size: float = 1.0, ndim: int = 2
) -> float | np.ndarray:
    """Interface length per unit area, L_A (2-D), or surface area per unit volume, S_V (3-D),
    of the ``True`` phase.

    Estimator: stereology's intercept count (Crofton formula), L_A = (pi/2) P_L in 2-D and
    S_V = 2 P_L in 3-D, where P_L is the number of phase changes per unit length of test line,
    averaged over the lattice directions (2-D: 0, 90, 45, 135 degrees; 3-D: the 13 directions
    to the 26 neighbours; diagonal steps are sqrt(2) or sqrt(3) voxels long). For a disk of
    radius R the 2-D estimate is 2 pi R / A. Counting the voxel faces between the phases
    instead (the marching-cubes-free shortcut) measures sum over the 3 axes of P_L = 3 P_L
    and overestimates an isotropic S_V by 3/2; this estimator is unbiased. Only pairs of
    voxels inside the image count, so the border is not an interface. For an isotropic 3-D
    structure seen in sections, S_V = (4/pi) L_A.

    Parameters
    ----------
    image : ndarray of bool, shape (H, W) or (..., H, W); with ``ndim=3`` (..., D, H, W)
        True = pore (the phase measured).
    pixel_size : float
        Side of a pixel (voxel), in the length unit wanted (e.g. µm).
    ndim : int
        2 (images) or 3 (volumes): the number of trailing spatial axes.

    Returns
    -------
    float or ndarray over the batch axes
        L_A or S_V in 1 / (unit of ``pixel_size``).
    """
    im = _as_binary(image, ndim)
    p_l = _intercepts_per_length(im, ndim) / pixel_size
    out = (np.pi / 2 if ndim == 2 else 2.0) * p_l
    return float(out) if np.ndim(out) == 0 else out


def two_point_correlation_map(
    image: np.ndarray, periodic: bool = False, r_max: int | None = None, ndim: int = 2
) -> np.ndarray:
    """S2 for every lattice vector d with each component |d_i| <= r_max, by FFT.

    S2(d) is the probability that x and x + d both lie in the ``True`` phase. Non-periodic
    images are zero-padded (by ``r_max``, enough for every lag kept) and each lag is divided by
    the number of pixel pairs that fit inside the image, prod_i (n_i - |d_i|), an unbiased
    estimate. Periodic images wrap around.

    Parameters
    ----------
    image : ndarray of bool, shape (H, W) or (..., H, W); with ``ndim=3`` (..., D, H, W)
        True = pore.
    periodic : bool
        Treat the image as periodic (wrap-around) instead of zero-padding.
    r_max : int, optional
        Largest lag in pixels, below the smallest side; default the smallest side // 2.
    ndim : int
        2 (images) or 3 (volumes): the number of trailing spatial axes.

    Returns
    -------
    ndarray of float64, shape (..., 2 r_max + 1, 2 r_max + 1[, 2 r_max + 1])
        S2 (dimensionless) centred on d = 0; entry [r_max + dy, r_max + dx] is lag (dy, dx)
        (in 3-D, [r_max + dz, r_max + dy, r_max + dx]).
    """
    im = _as_binary(image, ndim)
    sides = im.shape[-ndim:]
    r_max = min(sides) // 2 if r_max is None else int(r_max)
    if not 0 <= r_max < min(sides):
        raise ValueError(f"r_max must be in 0..{min(sides) - 1}, got {r_max}")
    x = im.astype(np.float64)
    axes = _axes(ndim)
    if periodic:
        shape = tuple(sides)
    else:
        shape = tuple(sfft.next_fast_len(n + r_max, real=True) for n in sides)
    spectrum = sfft.rfftn(x, s=shape, axes=axes, workers=_WORKERS)
    auto = sfft.irfftn(spectrum.real**2 + spectrum.imag**2, s=shape, axes=axes, workers=_WORKERS)
    lags = np.arange(-r_max, r_max + 1)
    index = np.ix_(*[lags % n for n in shape])
    window = auto[(...,) + index]
    if periodic:
        return window / np.prod(sides)
    pairs = np.ones((len(lags),) * ndim)
    for k, n in enumerate(sides):
        pairs = pairs * (n - np.abs(lags)).reshape([-1 if j == k else 1 for j in range(ndim)])
    return window / pairs


def radial_average(
    s2_map: np.ndarray, bins: np.ndarray | None = None, ndim: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Average a centred lag map over rings (2-D) or shells (3-D) of lag length.

    Default bins hold the lattice vectors with k - 1/2 <= |d| < k + 1/2 for k = 0..R, reported at
    r = k. Explicit ``bins`` are edges [b_i, b_i+1), reported at their centres (as PoreSpy does).
    Every lattice vector in a ring counts once.

    Parameters
    ----------
    s2_map : ndarray, shape (..., 2R + 1, 2R + 1), or (..., 2R + 1, 2R + 1, 2R + 1) in 3-D
        A map centred on lag 0, as from :func:`two_point_correlation_map`.
    bins : ndarray, optional
        Ring edges in pixels.
    ndim : int
        2 or 3: the number of trailing lag axes.

    Returns
    -------
    r : ndarray, shape (B,)
        Ring radii in pixels.
    s2 : ndarray, shape (..., B)
        The map's mean over each ring (NaN for an empty ring).
    """
    size = s2_map.shape[-1]
    radius = size // 2
    lags = np.arange(-radius, radius + 1)
    grids = np.meshgrid(*([lags] * ndim), indexing="ij")
    dist = np.sqrt(sum(g.astype(np.float64) ** 2 for g in grids)).ravel()
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
    flat = s2_map.reshape(-1, size**ndim)[:, inside]
    nb = len(edges) - 1
    # one bincount over the whole batch: offset each image's bins by its row number
    offset = (np.arange(len(flat))[:, None] * nb + which[None, :]).ravel()
    sums = np.bincount(offset, weights=flat.ravel(), minlength=len(flat) * nb).reshape(-1, nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        s2 = sums / counts
    return r, s2.reshape(s2_map.shape[:-ndim] + (nb,))


def two_point_correlation(
    image: np.ndarray,
    periodic: bool = False,
    r_max: int | None = None,
    bins: np.ndarray | None = None,
    ndim: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged two-point correlation S2(r) of the ``True`` phase.

    Parameters
    ----------
    image : (H, W) or (..., H, W) bool, True = pore; with ``ndim=3`` (..., D, H, W).
    periodic : treat the image as periodic (wrap-around) instead of zero-padding.
    r_max : largest lag in pixels; default the smallest side // 2.
    bins : optional ring edges in pixels (see :func:`radial_average`).
    ndim : 2 (images) or 3 (volumes; S2 averaged over spherical shells).

    Returns
    -------
    r : (R,) lag distances in pixels.
    s2 : (..., R) S2 at each r; S2(0) = porosity, S2 -> porosity**2 for large r in a random medium.
    """
    im = _as_binary(image, ndim)
    if bins is not None:
        r_max = int(np.ceil(np.max(bins)))
        r_max = min(r_max, min(im.shape[-ndim:]) - 1)
    s2_map = two_point_correlation_map(im, periodic=periodic, r_max=r_max, ndim=ndim)
    return radial_average(s2_map, bins, ndim=ndim)


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


def pore_interior_grey(images: np.ndarray, pores: np.ndarray, margin: int = 1) -> np.ndarray:
    """Grey levels of the pixels inside pores, at least ``margin`` px from the pore boundary.

    A real pore in an SEM image is uniformly dark; a generator's pore may be a dark ring around
    a lighter core, or mottled, and still give the right porosity once thresholded. Its interior
    grey levels show it: their mean rises and their spread widens.

    Parameters
    ----------
    images : ndarray, shape (..., H, W)
        Grey levels (any unit, e.g. [0, 1]).
    pores : ndarray of bool, shape (..., H, W)
        The pore segmentation of ``images`` (``True`` = pore).
    margin : int
        Pixels (chessboard distance) a pixel must lie inside its pore to count; 0 = every pore
        pixel.

    Returns
    -------
    ndarray, shape (K,)
        The grey levels of the K interior pixels, in the unit of ``images``.
    """
    from scipy import ndimage

    images = np.asarray(images)
    pores = _as_binary(pores)
    if images.shape != pores.shape:
        raise ValueError(f"images {images.shape} and pores {pores.shape} differ in shape")
    if margin > 0:  # erode within each image only
        structure = np.zeros((3,) * pores.ndim, bool)
        structure[(1,) * (pores.ndim - 2)] = True
        pores = ndimage.binary_erosion(pores, structure=structure, iterations=margin)
    return images[pores]


def _grown(pores: np.ndarray, px: int) -> np.ndarray:
    """Pores (N, H, W) grown by ``px`` px (chessboard distance), each image on its own."""
    from scipy import ndimage

    if px == 0:
        return pores
    return ndimage.binary_dilation(pores, np.ones((1, 3, 3), bool), iterations=px)


def _grey_and_pores(images: np.ndarray, pores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grey images (N, H, W) as float64 and their pore segmentation as bool, same shape."""
    images, pores = np.asarray(images, np.float64), _as_binary(pores)
    if images.shape != pores.shape or images.ndim != 3:
        raise ValueError(f"images {images.shape} and pores {pores.shape}: need equal (N, H, W)")
    return images, pores


def pore_rim_contrast(
    images: np.ndarray,
    pores: np.ndarray,
    inner: int = 1,
    outer: int = 3,
    far: int = 8,
    min_pixels: int = 20,
) -> np.ndarray:
    """How much lighter the solid just outside the pores is than the solid far from them.

    In an SEM image of a porous rock the solid next to a pore is as grey as the rest, or a
    little darker (the probe and the detector blur the dark pore into it); a generator may draw
    each pore with a bright halo and still give the right porosity. Per image: the mean grey of
    the solid between ``inner`` and ``outer`` px (chessboard distance) outside the pores minus
    the mean grey of the solid farther than ``far`` px from any pore.

    Parameters
    ----------
    images : ndarray, shape (N, H, W)
        Grey levels (any unit, e.g. [0, 1]).
    pores : ndarray of bool, shape (N, H, W)
        The pore segmentation of ``images``.
    inner, outer, far : int
        The rim's inner and outer distance and the far solid's least distance, in px.
    min_pixels : int
        Fewest rim and far-solid pixels for an image to be measured.

    Returns
    -------
    ndarray, shape (N,)
        Rim minus far-solid grey, in the unit of ``images``; NaN for an image with too few
        pixels in either (no pores, or pores everywhere).
    """
    images, pores = _grey_and_pores(images, pores)
    if not 0 <= inner < outer < far:
        raise ValueError(f"need 0 <= inner < outer < far, got {inner}, {outer}, {far}")
    rims, solids = _grown(pores, outer) & ~_grown(pores, inner), ~_grown(pores, far)
    out = np.full(len(images), np.nan)
    for i, (image, rim, solid) in enumerate(zip(images, rims, solids)):
        if rim.sum() >= min_pixels and solid.sum() >= min_pixels:
            out[i] = image[rim].mean() - image[solid].mean()
    return out


def far_solid_level(
    images: np.ndarray, pores: np.ndarray, percentile: float = 99.0, far: int = 8
) -> float:
    """The grey level that ``percentile`` % of the solid far from any pore lies below.

    Parameters
    ----------
    images : ndarray, shape (N, H, W)
        Grey levels (any unit, e.g. [0, 1]).
    pores : ndarray of bool, shape (N, H, W)
        The pore segmentation of ``images``.
    percentile : float
        In (0, 100).
    far : int
        The solid's least distance from a pore, px (chessboard).

    Returns
    -------
    float
        In the unit of ``images``, pooled over the images; NaN where no solid is that far.
    """
    images, pores = _grey_and_pores(images, pores)
    solid = images[~_grown(pores, far)]
    return float(np.percentile(solid, percentile)) if solid.size else float("nan")


def bright_rim_share(images: np.ndarray, pores: np.ndarray, level: float, outer: int = 2) -> float:
    """The share of the solid next to the pores that is brighter than ``level``.

    An SEM draws a pore's edge as a thin ring a little brighter than the solid, all the way
    round (the edge effect); a generator may instead set a bright speck on one side of a dark
    pore, which a rim's mean grey (:func:`pore_rim_contrast`) averages away. With ``level`` the
    real tiles' far-solid 99th percentile (:func:`far_solid_level`) under a thousandth of the
    embedded default's real band lies above it.

    Parameters
    ----------
    images : ndarray, shape (N, H, W)
        Grey levels, in the unit of ``level`` (smoothed as the pores were cut, so that single
        noisy pixels do not count).
    pores : ndarray of bool, shape (N, H, W)
        The pore segmentation of ``images``.
    level : float
        The grey level a speck exceeds.
    outer : int
        The band's width outside the pores, px (chessboard).

    Returns
    -------
    float
        The band's pixels above ``level`` over all its pixels, pooled over the images (a tile
        weighs as much as its band holds); NaN where there is no band (no pores).
    """
    images, pores = _grey_and_pores(images, pores)
    if outer < 1:
        raise ValueError(f"outer {outer}: the band is at least 1 px wide")
    band = _grown(pores, outer) & ~pores
    return float((images[band] > level).mean()) if band.any() else float("nan")


def crack_share(pores: np.ndarray, min_length: float = 14.0, max_width: float = 3.0) -> float:
    """The share of 2-D sections that hold a crack: a thin, long stretch of pore.

    A micro-fracture cut by a section is a line of pore 1–2 px wide across the solid (or
    through a pore); a generator that learnt only the rounded pores draws none. The thin parts
    of the pores are what a 3 × 3 px opening removes; a crack is an 8-connected thin part whose
    inertia ellipse (the same second moments, as scikit-image's ``axis_major_length``: 4 √λ)
    is at least ``min_length`` long and at most ``max_width`` wide. The jags of a pore's outline
    are thin too, but short. On the embedded default's real SEM tiles (64 px) 0.19 hold one.

    Parameters
    ----------
    pores : ndarray of bool, shape (N, H, W)
        Pore segmentations of N sections (``True`` = pore).
    min_length : float
        The shortest crack, px (major axis of the thin part's ellipse).
    max_width : float
        The widest crack, px (minor axis; a 1-px line reads 0, a 2-px one 2).

    Returns
    -------
    float
        The share of the N sections holding at least one crack.
    """
    from scipy import ndimage

    pores = np.asarray(pores, bool)
    if pores.ndim != 3:
        raise ValueError(f"pores of shape {pores.shape}: (N, H, W) sections expected")
    in_plane = np.zeros((3, 3, 3), bool)
    in_plane[1] = True  # each section on its own
    thin = pores & ~ndimage.binary_opening(pores, in_plane)
    labels, n = ndimage.label(thin, in_plane)
    if n == 0:
        return 0.0
    z, y, x = np.nonzero(labels)
    ids = labels[z, y, x]
    count = np.bincount(ids, minlength=n + 1)[1:].astype(float)

    def mean(v: np.ndarray) -> np.ndarray:
        return np.bincount(ids, v, minlength=n + 1)[1:] / count

    my, mx = mean(y), mean(x)
    vyy = mean(y.astype(float) ** 2) - my**2
    vxx = mean(x.astype(float) ** 2) - mx**2
    vxy = mean(x * y.astype(float)) - mx * my
    half_trace, det = (vyy + vxx) / 2, vyy * vxx - vxy**2
    spread = np.sqrt(np.maximum(half_trace**2 - det, 0.0))
    major = 4 * np.sqrt(np.maximum(half_trace + spread, 0.0))
    minor = 4 * np.sqrt(np.maximum(half_trace - spread, 0.0))
    crack = (major >= min_length) & (minor <= max_width)
    section = np.empty(n, int)
    section[ids - 1] = z  # a label lies in one section (labelled in-plane)
    return float(np.isin(np.arange(len(pores)), section[crack]).mean())


def particle_shapes(
    image: np.ndarray, pixel_size: float = 1.0, min_area: int = 4, exclude_border: bool = True
) -> dict[str, np.ndarray]:
    """Size and roundness of every particle (8-connected ``True`` region) of 2-D images.

    Circularity is 4πA/P² with scikit-image's Crofton perimeter P (a discrete estimate, so a
    digitised disc scores near but not exactly 1); aspect ratio is the minor over the major axis
    of the region's inertia ellipse (1 for a disc, 1/3 for a 3:1 ellipse), the measure of
    elongation. The same estimators on real and generated masks make them comparable.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (N, H, W)
        Binary image(s), ``True`` = the particles (pores, inclusions).
    pixel_size : float
        Side of a pixel in the length unit wanted.
    min_area : int
        Particles smaller than this many pixels are left out (their shape is not resolved).
    exclude_border : bool
        Leave out particles touching the image border (their shape is cut).

    Returns
    -------
    dict of ndarray, each shape (n_particles,)
        ``area`` (unit²), ``equivalent_diameter`` (unit; of the disc of the same area),
        ``circularity`` and ``aspect_ratio`` (dimensionless, 1 for a disc).
    """
    from skimage.measure import label, regionprops

    im = _as_binary(image)
    im = im.reshape(-1, *im.shape[-2:])
    areas, circularity, aspect = [], [], []
    for one in im:
        for region in regionprops(label(one, connectivity=2)):
            y0, x0, y1, x1 = region.bbox
            touches = y0 == 0 or x0 == 0 or y1 == one.shape[0] or x1 == one.shape[1]
            if region.area < min_area or (exclude_border and touches):
                continue
            areas.append(float(region.area))
            circularity.append(4 * np.pi * region.area / region.perimeter_crofton**2)
            aspect.append(region.axis_minor_length / max(region.axis_major_length, 1e-9))
    area = np.asarray(areas) * pixel_size**2
    return {
        "area": area,
        "equivalent_diameter": np.sqrt(4 * area / np.pi),
        "circularity": np.asarray(circularity),
        "aspect_ratio": np.asarray(aspect),
    }


def _in_long_runs(mask: np.ndarray, min_run: int) -> np.ndarray:
    """Pixels of ``mask`` (..., W) that lie in runs of at least ``min_run`` along the last axis."""
    rows = mask.reshape(-1, mask.shape[-1]).astype(np.int8)
    edges = np.diff(np.pad(rows, ((0, 0), (1, 1))), axis=1)  # +1 at a run's start, -1 past its end
    starts, ends = np.argwhere(edges == 1), np.argwhere(edges == -1)  # same row-major order
    long = (ends[:, 1] - starts[:, 1]) >= min_run
    marks = np.zeros(edges.shape, np.int32)
    np.add.at(marks, (starts[long, 0], starts[long, 1]), 1)
    np.add.at(marks, (ends[long, 0], ends[long, 1]), -1)
    return (np.cumsum(marks, axis=1)[:, :-1] > 0).reshape(mask.shape)


def axis_aligned_boundary_fraction(boundaries: np.ndarray, min_run: int = 6) -> float | np.ndarray:
    """Share of grain-boundary pixels lying in straight horizontal or vertical runs.

    A tessellation of randomly placed nuclei has boundaries at every angle, so only a part of
    its 1-px boundary pixels (those of near-axial boundaries) form long axis-aligned runs; a
    lattice of square grains has nearly all of them there. The measure of a lattice artefact
    (a generator placing one nucleus at the centre of each cell of its grid).

    Parameters
    ----------
    boundaries : ndarray, shape (H, W) or (N, H, W)
        Binary boundary map(s), ``True`` on boundary pixels.
    min_run : int
        Least length (px) of a straight run that counts.

    Returns
    -------
    float or ndarray of shape (N,)
        Fraction in [0, 1] (NaN for a map without boundaries); dimensionless.
    """
    b = _as_binary(boundaries)
    aligned = _in_long_runs(b, min_run) | np.swapaxes(
        _in_long_runs(np.swapaxes(b, -1, -2), min_run), -1, -2
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        out = aligned.sum(axis=(-2, -1)) / b.sum(axis=(-2, -1))
    return float(out) if np.ndim(out) == 0 else out
