"""Embedded default of the polysilicon study: grain microstructures with a known Young's modulus.

Each image is a representative volume element (RVE) of a polysilicon film seen from above:
Voronoi grains (optionally columnar, i.e. elongated along y) whose crystal orientations follow a
<110> fibre texture — every grain has a <110> axis along the film normal z and a random rotation
ψ about it. The grey level of a grain encodes ψ (period 180°, the two-fold symmetry of <110>),
so the orientation can be read back from the image; grain boundaries are dark one-pixel lines.
The four classes are RVE sizes (2, 3, 5, 10 µm by default) imaged at the same pixel count with
the same physical grain size, so the grain count per image grows with the RVE size.

The label E11 is the homogenised Young's modulus along x of the RVE from cubic silicon
(C11 165.7, C12 63.9, C44 79.6 GPa): Voigt (uniform strain, area-averaged stiffness) and Reuss
(uniform stress, area-averaged compliance) bounds, and their mean, the Hill estimate, as label.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ..io import save_image, save_table

SILICON_GPA = (165.7, 63.9, 79.6)  # C11, C12, C44
GREY_RANGE = (0.2, 0.95)  # grey level of ψ = 0° and of ψ → 180°
BOUNDARY_GREY = 0.05
# grey level below which the grain segmentation takes a pixel for boundary (between the rendered
# boundaries and the darkest grain)
BOUNDARY_THRESHOLD = 0.125
PSI_PERIOD = 180.0  # degrees; <110> fibre: two-fold symmetry about the film normal


def cubic_stiffness(c11: float, c12: float, c44: float) -> np.ndarray:
    """Fourth-order stiffness tensor C_ijkl (3, 3, 3, 3) of a cubic crystal in its own axes, GPa."""
    c = np.zeros((3, 3, 3, 3))
    for i in range(3):
        for j in range(3):
            c[i, i, j, j] = c12
        c[i, i, i, i] = c11
    for i in range(3):
        for j in range(3):
            if i != j:
                c[i, j, i, j] = c[i, j, j, i] = c44
    return c


def fibre_rotation(psi_deg: np.ndarray) -> np.ndarray:
    """Rotations (N, 3, 3) from crystal to sample axes for a <110> fibre texture.

    At ψ = 0 the sample axes are x = [001], y = [1-10]/√2, z = [110]/√2 in crystal axes; ψ turns
    the crystal about z. Rows of the returned matrix are the sample axes in crystal coordinates,
    so ``R @ v_crystal`` gives sample coordinates.
    """
    base = np.array(
        [
            [0.0, 0.0, 1.0],
            [1 / np.sqrt(2), -1 / np.sqrt(2), 0.0],
            [1 / np.sqrt(2), 1 / np.sqrt(2), 0.0],
        ]
    )
    psi = np.deg2rad(np.atleast_1d(np.asarray(psi_deg, float)))
    cos, sin = np.cos(psi), np.sin(psi)
    rz = np.zeros((len(psi), 3, 3))
    rz[:, 0, 0], rz[:, 0, 1], rz[:, 1, 0], rz[:, 1, 1], rz[:, 2, 2] = cos, sin, -sin, cos, 1.0
    return rz @ base


def directional_modulus(
    direction: np.ndarray,
    c11: float = SILICON_GPA[0],
    c12: float = SILICON_GPA[1],
    c44: float = SILICON_GPA[2],
) -> np.ndarray:
    """Young's modulus (GPa) of a cubic crystal along unit vectors ``direction`` (..., 3) given in
    crystal axes: 1/E = S11 − 2 (S11 − S12 − S44/2)(n1²n2² + n2²n3² + n3²n1²)."""
    n = np.asarray(direction, float)
    n = n / np.linalg.norm(n, axis=-1, keepdims=True)
    det = (c11 - c12) * (c11 + 2 * c12)
    s11, s12, s44 = (c11 + c12) / det, -c12 / det, 1 / c44
    j = (n[..., 0] * n[..., 1]) ** 2 + (n[..., 1] * n[..., 2]) ** 2 + (n[..., 2] * n[..., 0]) ** 2
    return 1.0 / (s11 - 2 * (s11 - s12 - s44 / 2) * j)


def _voigt_matrix(c: np.ndarray) -> np.ndarray:
    pairs = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]
    return np.array([[c[i, j, k, l] for k, l in pairs] for i, j in pairs])


def homogenised_e11(
    psi_deg: np.ndarray,
    weights: np.ndarray | None = None,
    constants: tuple[float, float, float] = SILICON_GPA,
) -> dict[str, float]:
    """Voigt, Reuss and Hill estimates of the RVE's Young's modulus along x (GPa).

    ``psi_deg``: in-plane rotation of each grain (or pixel) about the <110> fibre axis;
    ``weights``: their areas (default equal). Voigt inverts the area-averaged rotated stiffness,
    Reuss averages the compliance S'_1111 = 1/E_x; Reuss ≤ Hill ≤ Voigt.
    """
    psi = np.atleast_1d(np.asarray(psi_deg, float))
    w = np.ones_like(psi) if weights is None else np.asarray(weights, float)
    w = w / w.sum()
    rot = fibre_rotation(psi)
    c = cubic_stiffness(*constants)
    rotated = np.einsum("nip,njq,nkr,nls,pqrs->nijkl", rot, rot, rot, rot, c, optimize=True)
    c_mean = np.einsum("n,nijkl->ijkl", w, rotated)
    e_voigt = 1.0 / np.linalg.inv(_voigt_matrix(c_mean))[0, 0]
    e_x = directional_modulus(rot[:, 0, :], *constants)  # sample x in crystal axes
    e_reuss = 1.0 / np.sum(w / e_x)
    return {
        "voigt": float(e_voigt),
        "reuss": float(e_reuss),
        "hill": float((e_voigt + e_reuss) / 2),
    }


def e11_trig_basis(constants: tuple[float, float, float] = SILICON_GPA) -> dict[str, np.ndarray]:
    """The physics of :func:`homogenised_e11` as sums over trigonometric moments of ψ.

    Rotating a 4th-rank tensor about the fibre axis by ψ gives components that are trigonometric
    polynomials of degree 4: C'(ψ) = Σ_k B_k f_k(ψ), and 1/E_x(ψ) = Σ_k r_k f_k(ψ), with
    f = (1, cos 2ψ, sin 2ψ, cos 4ψ, sin 4ψ). So an RVE's Voigt stiffness is Σ_k B_k ⟨f_k⟩ and its
    Reuss compliance Σ_k r_k ⟨f_k⟩, ⟨·⟩ the area-weighted mean over its grains: the E11 of a map
    from five moments — cheap and differentiable (the generators' physics term uses it). Returns
    ``voigt`` B (5, 6, 6) in GPa, ``reuss`` r (5,) in 1/GPa, fitted exactly (degree-4 identity)
    on 73 angles."""
    psi = np.linspace(0.0, 180.0, 73)
    f = trig_moments(np.deg2rad(psi))  # (73, 5)
    rot = fibre_rotation(psi)
    c = cubic_stiffness(*constants)
    rotated = np.einsum("nip,njq,nkr,nls,pqrs->nijkl", rot, rot, rot, rot, c, optimize=True)
    voigt = np.stack([_voigt_matrix(t) for t in rotated]).reshape(len(psi), 36)
    compliance = 1.0 / directional_modulus(rot[:, 0, :], *constants)
    basis = np.linalg.lstsq(f, np.column_stack([voigt, compliance]), rcond=None)[0]
    return {"voigt": basis[:, :36].reshape(5, 6, 6), "reuss": basis[:, 36]}


def trig_moments(psi_rad: np.ndarray) -> np.ndarray:
    """(…, 5): 1, cos 2ψ, sin 2ψ, cos 4ψ, sin 4ψ of angles ψ in radians."""
    psi = np.asarray(psi_rad, float)[..., None]
    return np.concatenate(
        [np.ones_like(psi), np.cos(2 * psi), np.sin(2 * psi), np.cos(4 * psi), np.sin(4 * psi)], -1
    )


def psi_to_grey(psi_deg: np.ndarray) -> np.ndarray:
    lo, hi = GREY_RANGE
    return lo + (hi - lo) * (np.mod(psi_deg, PSI_PERIOD) / PSI_PERIOD)


def grey_to_psi(grey: np.ndarray) -> np.ndarray:
    """ψ (degrees) from a grain's grey level: the inverse of the rendering's encoding."""
    lo, hi = GREY_RANGE
    return np.clip((np.asarray(grey, float) - lo) / (hi - lo), 0, 1) * PSI_PERIOD


def voronoi_grains(
    size: int, n_grains: int, rng: np.random.Generator, elongation: float = 1.0
) -> np.ndarray:
    """Label map (size, size) of periodic Voronoi grains; ``elongation`` > 1 stretches them
    along y (columnar growth seen at a slant)."""
    seeds = rng.uniform(0, size, (n_grains, 2))
    yy, xx = np.mgrid[:size, :size] + 0.5
    scale = np.array([1.0 / elongation, 1.0])
    tree = cKDTree(seeds * scale, boxsize=np.array([size, size]) * scale)
    _, labels = tree.query(np.stack([yy.ravel(), xx.ravel()], 1) * scale)
    return labels.reshape(size, size)


def grain_boundaries(labels: np.ndarray) -> np.ndarray:
    """One-pixel boundaries: pixels whose right or lower neighbour belongs to another grain."""
    edge = np.zeros(labels.shape, bool)
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
    return edge


def render_microstructure(
    labels: np.ndarray, psi_deg: np.ndarray, noise: float, rng: np.random.Generator
) -> np.ndarray:
    """Grey image in [0, 1]: grain grey from ψ, dark boundaries, Gaussian noise."""
    image = psi_to_grey(psi_deg)[labels]
    image[grain_boundaries(labels)] = BOUNDARY_GREY
    return np.clip(image + rng.normal(0, noise, image.shape), 0, 1)


def e11_of_image(
    image: np.ndarray, boundary_threshold: float = BOUNDARY_THRESHOLD
) -> dict[str, float]:
    """E11 (GPa; Voigt, Reuss, Hill) of a rendered microstructure by the same physics that
    labelled it: segment the grains (connected regions brighter than the boundaries), read each
    grain's ψ from its mean grey level, give the boundary pixels to the nearest grain so the areas
    are whole, and homogenise with the areas as weights.

    Works on generated images too, which is how synthetic samples are checked against the E11
    they were conditioned on. An image without grains gives NaN.
    """
    from scipy import ndimage
    from skimage.measure import label

    image = np.asarray(image, float)
    grains = label(image > boundary_threshold, connectivity=1)
    n = int(grains.max())
    if n == 0:
        return {"voigt": float("nan"), "reuss": float("nan"), "hill": float("nan")}
    nearest = ndimage.distance_transform_edt(
        grains == 0, return_distances=False, return_indices=True
    )
    whole = grains[tuple(nearest)]
    areas = np.bincount(whole.ravel(), minlength=n + 1)[1:]
    grey = np.asarray(ndimage.mean(image, grains, index=np.arange(1, n + 1)))
    return homogenised_e11(grey_to_psi(grey), areas)


def grain_count(
    image: np.ndarray, boundary_threshold: float = BOUNDARY_THRESHOLD, min_area: int = 3
) -> int:
    """Number of grains: connected non-boundary regions of at least ``min_area`` pixels."""
    from skimage.measure import label

    regions = label(np.asarray(image) > boundary_threshold, connectivity=1)
    areas = np.bincount(regions.ravel())[1:]
    return int((areas >= min_area).sum())


def simulate_polysilicon(
    out_dir: str | os.PathLike,
    *,
    seed: int,
    images_per_class: list[int],
    rve_sizes_um: list[float],
    image_size: int = 64,
    grain_size_um: float = 0.6,
    elongation: float = 1.2,
    noise: float = 0.01,
) -> Path:
    """Write the polysilicon images (PNG, 8-bit) and a sample sheet with class and E11.

    Class k has ``images_per_class[k]`` RVEs of ``rve_sizes_um[k]`` µm side, each with
    Poisson(area / grain_size²) grains (at least 2). The sheet has columns path, domain
    (``grains``), pixel_size (µm), sample, class (the RVE size as text, e.g. ``"5um"``), e11 (Hill,
    GPa) and label_e11_voigt / label_e11_reuss / label_grains.
    """
    from ..util import progress

    if len(images_per_class) != len(rve_sizes_um):
        raise ValueError("images_per_class and rve_sizes_um must have the same length")
    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    jobs = [(k, i) for k, n in enumerate(images_per_class) for i in range(n)]
    for k, i in progress(jobs, desc="polysilicon RVEs", total=len(jobs)):
        rve = rve_sizes_um[k]
        n_grains = max(2, int(rng.poisson((rve / grain_size_um) ** 2)))
        labels = voronoi_grains(image_size, n_grains, rng, elongation)
        psi = rng.uniform(0, PSI_PERIOD, n_grains)
        areas = np.bincount(labels.ravel(), minlength=n_grains)
        e11 = homogenised_e11(psi, areas)
        image = render_microstructure(labels, psi, noise, rng)
        name = f"images/{_class_name(rve)}_{i:05d}.png"
        save_image(out / name, np.round(image * 255).astype(np.uint8))
        rows.append(
            dict(
                path=name,
                domain="grains",
                pixel_size=rve / image_size,
                sample=f"{_class_name(rve)}_{i:05d}",
                **{"class": _class_name(rve)},
                e11=round(e11["hill"], 4),
                label_e11_voigt=round(e11["voigt"], 4),
                label_e11_reuss=round(e11["reuss"], 4),
                label_grains=n_grains,
            )
        )
    sheet = out / "samples.tsv"
    save_table(sheet, pd.DataFrame(rows))
    return sheet


def _class_name(rve_um: float) -> str:
    return f"{rve_um:g}um"
