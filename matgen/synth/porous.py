"""Embedded-default data of the porous-rock study: SEM slices and micro-CT of one 3-D medium.

The medium is a thresholded 3-D Gaussian random field (two length scales: grains and fine
pores) cut by thin, mostly steep micro-fractures. It is rendered two ways:

- high-resolution SEM slices (backscatter-like contrast): dark pores, grain texture, bright rims
  at pore edges (edge effect), mild blur and noise; 8-bit;
- low-resolution micro-CT of *other* regions: ``factor``-times coarser voxels, each grey value
  the solid fraction of its ``factor``^3 block (partial-volume effect), point-spread blur and
  noise; 16-bit. Beside each micro-CT image the true high-resolution SEM rendering of its central
  slice and its pore mask are kept (domain ``microct_truth``), which the paper could not have.

Everything is written as image files plus a sample sheet, so the embedded default enters the
workflow exactly as real data does.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from ..io import save_image, save_table
from .fields import gaussian_random_field


def porous_volume(
    shape: tuple[int, int, int],
    porosity: float,
    correlation_length: float,
    fractures_per_megavoxel: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Boolean 3-D medium (D, H, W), True = pore, with about ``porosity`` pore fraction.

    ``correlation_length`` (voxels) sets the grain scale; a field at a third of it adds fine
    pores. Fractures are discs of random radius and 1-2 voxel aperture whose normals lie near
    the horizontal plane, so they show as elongated cracks in the xy sections.
    """
    field = 0.8 * gaussian_random_field(
        shape, correlation_length, rng
    ) + 0.2 * gaussian_random_field(shape, correlation_length / 3, rng)
    pores = field > np.quantile(field, 1.0 - porosity)
    d, h, w = shape
    n_fractures = rng.poisson(fractures_per_megavoxel * d * h * w / 1e6)
    if n_fractures:
        zz, yy, xx = np.meshgrid(np.arange(d), np.arange(h), np.arange(w), indexing="ij")
        for _ in range(n_fractures):
            centre = rng.uniform((0, 0, 0), (d, h, w))
            azimuth = rng.uniform(0, np.pi)
            dip = rng.normal(0, 0.15)  # normal close to horizontal -> steep crack plane
            normal = np.array(
                [np.sin(dip), np.cos(dip) * np.sin(azimuth), np.cos(dip) * np.cos(azimuth)]
            )
            radius = rng.uniform(0.15, 0.45) * max(h, w)
            aperture = rng.uniform(0.6, 1.2)
            rel = (zz - centre[0], yy - centre[1], xx - centre[2])
            dist_plane = np.abs(sum(n * r for n, r in zip(normal, rel)))
            dist_in_plane2 = sum(r * r for r in rel) - dist_plane**2
            pores |= (dist_plane < aperture) & (dist_in_plane2 < radius**2)
    return pores


def render_sem(pores: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Backscatter-SEM-like grey image in [0, 1] of a 2-D pore mask (True = pore)."""
    shape = pores.shape
    solid = (
        0.55
        + 0.07 * gaussian_random_field(shape, 8.0, rng)
        + 0.04 * gaussian_random_field(shape, 1.5, rng)
    )
    pore = 0.12 + 0.03 * gaussian_random_field(shape, 3.0, rng)
    # Edge effect: more secondary electrons escape near a pore wall, so rims look bright.
    rim = 0.22 * np.exp(-ndimage.distance_transform_edt(~pores) / 1.5) if pores.any() else 0.0
    image = np.where(pores, pore, solid + rim)
    image = ndimage.gaussian_filter(image, 0.7) + noise * rng.standard_normal(shape)
    return np.clip(image, 0.0, 1.0)


def render_microct(
    block: np.ndarray, factor: int, noise: float, rng: np.random.Generator
) -> np.ndarray:
    """Micro-CT grey image in [0, 1] of a (factor, H*factor, W*factor) pore volume.

    Each coarse voxel's attenuation is its solid fraction (partial volume), then a point-spread
    blur of 0.7 coarse voxels and Gaussian noise.
    """
    d, h, w = block.shape
    solid = 1.0 - block.reshape(d, h // factor, factor, w // factor, factor).mean(axis=(0, 2, 4))
    image = 0.2 + 0.6 * solid
    image = ndimage.gaussian_filter(image, 0.7) + noise * rng.standard_normal(image.shape)
    return np.clip(image, 0.0, 1.0)


def simulate_porous(
    out_dir: str | os.PathLike,
    *,
    n_sem: int,
    sem_size: int,
    n_microct: int,
    microct_size: int,
    factor: int,
    porosity: tuple[float, float],
    correlation_length: float,
    fractures_per_megavoxel: float,
    sem_pixel_size: float,
    sem_noise: float,
    microct_noise: float,
    seed: int,
) -> Path:
    """Write the porous study's embedded-default images and return the sample sheet's path.

    ``sem_size`` and ``correlation_length`` are in SEM pixels (``sem_pixel_size`` µm);
    micro-CT images are ``microct_size`` coarse pixels of ``factor * sem_pixel_size`` µm.
    Each image gets its own porosity, uniform in ``porosity`` (min, max).
    """
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    rows = []
    # A slab a few correlation lengths deep, so the 3-D smoothing is not cut short at the
    # section; its central slice is the SEM section.
    depth = 2 * int(np.ceil(2 * correlation_length)) + 1
    for i in range(n_sem):
        phi = rng.uniform(*porosity)
        slab = porous_volume(
            (depth, sem_size, sem_size), phi, correlation_length, fractures_per_megavoxel, rng
        )
        section = slab[depth // 2]
        name = f"sem_{i:03d}"
        save_image(out / f"{name}.tif", _to_uint(render_sem(section, sem_noise, rng), np.uint8))
        save_image(out / f"{name}_pores.png", section.astype(np.uint8))
        rows.append(
            dict(
                path=f"{name}.tif",
                domain="sem",
                pixel_size=sem_pixel_size,
                sample=name,
                mask=f"{name}_pores.png",
            )
        )
    hr = microct_size * factor
    for i in range(n_microct):
        phi = rng.uniform(*porosity)
        d = max(factor, depth)
        block = porous_volume((d, hr, hr), phi, correlation_length, fractures_per_megavoxel, rng)
        start = (d - factor) // 2
        ct_block = block[start : start + factor]
        name = f"microct_{i:03d}"
        save_image(
            out / f"{name}.tif",
            _to_uint(render_microct(ct_block, factor, microct_noise, rng), np.uint16),
        )
        rows.append(
            dict(
                path=f"{name}.tif",
                domain="microct",
                pixel_size=sem_pixel_size * factor,
                sample=name,
                mask="",
            )
        )
        truth = ct_block[factor // 2]
        save_image(out / f"{name}_truth.tif", _to_uint(render_sem(truth, sem_noise, rng), np.uint8))
        save_image(out / f"{name}_truth_pores.png", truth.astype(np.uint8))
        rows.append(
            dict(
                path=f"{name}_truth.tif",
                domain="microct_truth",
                pixel_size=sem_pixel_size,
                sample=name,
                mask=f"{name}_truth_pores.png",
            )
        )
    sheet = out / "samples.tsv"
    save_table(sheet, pd.DataFrame(rows))
    return sheet


def _to_uint(image: np.ndarray, dtype: type) -> np.ndarray:
    top = np.iinfo(dtype).max
    return np.round(image * top).astype(dtype)
