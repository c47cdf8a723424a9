"""Embedded default of the segmentation study: multi-phase micrographs with two masks each.

Phases (labels): 0 matrix, 1 second phase (a thresholded Gaussian random field, i.e. a
bicontinuous or island-like phase by its area fraction), 2 pores/inclusions (discs of random
radius placed over both). Rendering: phase grey levels with phase-dependent texture (fine
random fields of different amplitude), a smooth illumination gradient, optical blur and noise —
what makes thresholding fail and a learnt segmentation worth its training data.

Masks: the *exact* labels (used only to score) and an *annotated* version that mimics hand
labelling — class boundaries moved by one or two pixels (each object dilated or eroded at
random) and small objects missed (labelled as matrix) — used for training, as in practice.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from ..io import save_image, save_table
from .fields import gaussian_random_field

CLASS_NAMES = ("matrix", "second_phase", "pore")
GREY = (0.55, 0.78, 0.12)  # mean grey level per phase
TEXTURE = (0.05, 0.02, 0.03)  # amplitude of each phase's fine texture


def multiphase_labels(
    size: int,
    rng: np.random.Generator,
    second_phase_fraction: float = 0.3,
    correlation_length: float = 6.0,
    pores_per_megapixel: float = 1500.0,
    pore_radius: tuple[float, float] = (1.5, 6.0),
) -> np.ndarray:
    """Exact label map (size, size), int: 0 matrix, 1 second phase, 2 pores/inclusions."""
    field = gaussian_random_field((size, size), correlation_length, rng)
    labels = (field > np.quantile(field, 1 - second_phase_fraction)).astype(np.int64)
    yy, xx = np.mgrid[:size, :size]
    for _ in range(rng.poisson(pores_per_megapixel * size * size / 1e6)):
        cy, cx = rng.uniform(0, size, 2)
        r = rng.uniform(*pore_radius)
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 2
    return labels


def render_micrograph(
    labels: np.ndarray,
    rng: np.random.Generator,
    noise: float = 0.04,
    blur_sigma: float = 1.0,
    gradient: float = 0.15,
) -> np.ndarray:
    """Grey image in [0, 1] of a label map (see the module docstring)."""
    size = labels.shape
    image = np.zeros(size)
    for c, (grey, amp) in enumerate(zip(GREY, TEXTURE)):
        texture = amp * gaussian_random_field(size, 1.0 + c, rng)
        image = np.where(labels == c, grey + texture, image)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[: size[0], : size[1]] / max(size)
    ramp = (np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5)) * 2 * gradient
    image = ndimage.gaussian_filter(image * (1 + ramp), blur_sigma)
    return np.clip(image + rng.normal(0, noise, size), 0, 1)


def annotate_like_a_human(
    labels: np.ndarray, rng: np.random.Generator, max_shift: int = 2, min_area: int = 12
) -> np.ndarray:
    """Imperfect hand-drawn mask: each object of phases 1 and 2 is dilated or eroded by 0..
    ``max_shift`` px at random, and objects smaller than ``min_area`` px are missed (matrix)."""
    out = np.zeros_like(labels)
    for c in (1, 2):  # later phases are drawn on top, as an annotator paints inclusions last
        objects, n = ndimage.label(labels == c)
        areas = np.bincount(objects.ravel(), minlength=n + 1)
        for k in range(1, n + 1):
            if areas[k] < min_area:
                continue
            region = objects == k
            shift = int(rng.integers(-max_shift, max_shift + 1))
            if shift > 0:
                region = ndimage.binary_dilation(region, iterations=shift)
            elif shift < 0:
                eroded = ndimage.binary_erosion(region, iterations=-shift)
                region = eroded if eroded.any() else region
            out[region] = c
    return out


def simulate_segmentation(
    out_dir: str | os.PathLike,
    *,
    seed: int,
    n_images: int,
    size: int = 128,
    second_phase_fraction: float = 0.3,
    correlation_length: float = 6.0,
    pores_per_megapixel: float = 1500.0,
    noise: float = 0.04,
    blur_sigma: float = 1.0,
    gradient: float = 0.15,
    pixel_size: float = 0.05,
) -> Path:
    """Write ``n_images`` micrographs (8-bit PNG), their annotated masks (``mask`` column, used
    for training) and exact masks (``label_exact_mask``, used only for scoring), and a sample
    sheet (domain ``micrograph``)."""
    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    rows = []
    for i in range(n_images):
        labels = multiphase_labels(
            size, rng, second_phase_fraction, correlation_length, pores_per_megapixel
        )
        image = render_micrograph(labels, rng, noise, blur_sigma, gradient)
        annotated = annotate_like_a_human(labels, rng)
        name = f"micrograph_{i:03d}"
        save_image(out / f"{name}.png", np.round(image * 255).astype(np.uint8))
        save_image(out / f"{name}_mask.png", annotated.astype(np.uint8))
        save_image(out / f"{name}_exact.png", labels.astype(np.uint8))
        rows.append(
            dict(
                path=f"{name}.png",
                domain="micrograph",
                pixel_size=pixel_size,
                sample=name,
                mask=f"{name}_mask.png",
                label_exact_mask=f"{name}_exact.png",
            )
        )
    sheet = out / "samples.tsv"
    save_table(sheet, pd.DataFrame(rows))
    return sheet
