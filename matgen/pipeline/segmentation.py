"""Stages of the segmentation study: fit the VQ-VAE and its PixelCNN prior on the real training
images, sample new image + mask pairs, train U-Nets on real/synthetic mixes with several seeds
and score them on held-out real images only, against their exact masks.

The real images are split once (``split``: ``n_test`` held out, drawn from ``seed``); the
generators and every U-Net see only the training part, and only its *annotated* masks (the hand
labelling with its errors). A mix is ``real`` images (the first of the training part) plus
``synthetic_images`` real-image equivalents of generated pairs (pixel area), so "real + k×
synthetic" is ``synthetic_images = k × real``; a batch sample is synthetic with probability
synthetic / (real + synthetic).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..checkpoint import save_checkpoint
from ..data.conditions import held_out_split
from ..data.ingest import load_stack
from ..errors import InputError
from ..inference.segmentation import (
    UNLABELLED,
    calibrated_fraction_shift,
    code_class_counts,
    code_pixel_blocks,
    draw_class_fractions,
    encode_codes,
    level_kwargs,
    load_pixelcnn,
    load_segmenter,
    load_vqvae,
    pore_centre_cells,
    real_class_fractions,
    segment,
)
from ..io import read_image, save_image, save_npy, save_npz, save_table
from ..metrics.segmentation import iou_per_class, miou, miou_present_classes
from ..train.segmentation import train_pixelcnn, train_segmenter, train_vqvae
from ..util import select_device

if TYPE_CHECKING:  # torch is imported where it is used: the CLI starts fast
    import torch


def load_real(
    images_path: str | os.PathLike,
    masks_path: str | os.PathLike,
    table_path: str | os.PathLike,
    split: dict[str, int],
) -> dict[str, np.ndarray]:
    """Real images split into train/test: images (N, 1, H, W), annotated masks (training) and
    exact masks (``label_exact_mask`` column; the annotated mask where a row has none): the test
    part's for scoring, the training part's for a ceiling mix that may use perfect labels."""
    images = np.asarray(load_stack(images_path), np.float32)
    masks = np.load(masks_path)
    table = pd.read_csv(table_path, keep_default_na=False)
    n_test = int(split["n_test"])
    if not 0 < n_test < len(images):
        raise InputError(
            f"{table_path}: {len(images)} real images; split.n_test must leave "
            f"some for training and some for testing, got {n_test}"
        )
    train, test = held_out_split(len(images), n_test / len(images), int(split["seed"]))
    exact_paths = table.get("label_exact_mask", pd.Series([""] * len(table))).astype(str)

    def exact(index: np.ndarray) -> np.ndarray:
        return np.stack([read_image(exact_paths[i]).astype(np.uint8) if exact_paths[i]
                         else masks[i] for i in index])  # fmt: skip

    return {
        "train_images": images[train],
        "train_masks": masks[train],
        "train_exact": exact(train),
        "test_images": images[test],
        "test_masks": masks[test],
        "test_exact": exact(test),
        "train_index": train,
        "test_index": test,
    }


def _first_real(real: dict[str, np.ndarray], n_real: int) -> dict[str, np.ndarray]:
    """The split with only the first ``n_real`` training pairs (0: all of them)."""
    if n_real > len(real["train_images"]):
        raise InputError(
            f"a generator of {n_real} real images asked for, the training split has "
            f"{len(real['train_images'])}"
        )
    if n_real <= 0:
        return real
    return {**real, "train_images": real["train_images"][:n_real],
            "train_masks": real["train_masks"][:n_real]}  # fmt: skip


def fit_vqvae(
    images_path: str | os.PathLike,
    masks_path: str | os.PathLike,
    table_path: str | os.PathLike,
    model_out: str | os.PathLike,
    log_out: str | os.PathLike,
    *,
    classes: list[str],
    split: dict[str, int],
    n_real: int = 0,
    **train: Any,
) -> dict[str, Any]:
    """Train the VQ-VAE on the first ``n_real`` real training images (0: all) and their
    annotated masks — the images the mixes of ``n_real`` real images use, no others."""
    real = _first_real(load_real(images_path, masks_path, table_path, split), n_real)
    return train_vqvae(
        real["train_images"],
        real["train_masks"],
        model_out,
        log_out,
        n_classes=len(classes),
        **train,
    )


def fit_pixelcnn(
    vqvae_path: str | os.PathLike,
    images_path: str | os.PathLike,
    masks_path: str | os.PathLike,
    table_path: str | os.PathLike,
    model_out: str | os.PathLike,
    log_out: str | os.PathLike,
    *,
    split: dict[str, int],
    n_real: int = 0,
    condition_on_fractions: bool = False,
    class_map_px: int = 0,
    class_map_pore_centres: bool = False,
    class_map_pore_sizes: list[float] | tuple[float, ...] = (),
    pore_map: bool = False,
    pore_map_pixels: bool = False,
    **train: Any,
) -> dict[str, Any]:
    """Encode the first ``n_real`` real training pairs (0: all) with the VQ-VAE and fit the
    PixelCNN prior to the codes; ``condition_on_fractions``: conditioned on each window's
    class fractions of the annotated mask (sampling then draws them as real windows hold
    them); ``class_map_px`` > 0 (a multiple of the code size): a two-level prior, the
    layout of the phases (the annotated mask's classes but the last, the pores) in cells of
    that many px first, then the codes — pores included — given it; ``class_map_pore_centres``:
    that map also marks the cells that hold a pore's centre (a class of its own), so the codes
    draw each pore round the place the map set for it; ``class_map_pore_sizes``: equivalent
    diameters (px, increasing) that split those marks into size classes, so a pore's size is
    drawn with its centre; ``pore_map``: between that map and the codes a level of its own
    draws which codes hold pore pixels, so a pore's footprint is drawn whole before its
    codes fill it; ``pore_map_pixels``: that level draws which of each code's pixels are pore
    (2^(d²) symbols for d-px codes, d ≤ 2), the pore's outline to the pixel, and the codes
    only follow it."""
    real = _first_real(load_real(images_path, masks_path, table_path, split), n_real)
    vqvae = load_vqvae(vqvae_path, str(select_device(train.get("device", "auto"))))
    codes = encode_codes(vqvae, real["train_images"], real["train_masks"])
    masks, k = real["train_masks"], vqvae.n_classes
    code_counts = code_class_counts(masks, vqvae.downsample, k)  # each class's pixels per code
    counts = code_counts if condition_on_fractions else None
    cell_counts = marks = pores = None
    for key, on in (("class_map_pore_centres", class_map_pore_centres), ("pore_map", pore_map)):
        if on and not class_map_px:
            raise InputError(f"pixelcnn.{key} belongs to a prior drawn in levels: set "
                             "class_map_px > 0 (e.g. 4)")  # fmt: skip
    if pore_map_pixels and not pore_map:
        raise InputError("pixelcnn.pore_map_pixels is a kind of pore map: set pore_map: true")
    if pore_map_pixels and vqvae.downsample > 2:
        d = vqvae.downsample
        raise InputError(f"pixelcnn.pore_map_pixels: {d}-px codes would make 2^{d * d} "
                         "symbols; it takes codes of 1 or 2 px")  # fmt: skip
    if class_map_pore_sizes and not class_map_pore_centres:
        raise InputError("pixelcnn.class_map_pore_sizes split the pore centres' marks: set "
                         "class_map_pore_centres: true")  # fmt: skip
    if class_map_px:
        if class_map_px % vqvae.downsample:
            raise InputError(f"pixelcnn.class_map_px {class_map_px} is not a multiple of the "
                             f"VQ-VAE's {vqvae.downsample}-px codes")  # fmt: skip
        # pores (the last class) are left to the codes: 7-px pores drawn as 4-px cells came
        # out too large (diameter KS 0.18-0.25 against 0.08-0.18 from the codes)
        cell_counts = code_class_counts(masks, class_map_px, k)
        if class_map_pore_centres:
            marks = pore_centre_cells(masks, class_map_px, k - 1, class_map_pore_sizes)
        if pore_map:
            # the pores' footprint: every code holding a pore pixel (the codes then draw
            # where in it the outline runs). At least half the pixels drew the pores larger
            # (8.0-8.4 px against the real 7.4, diameter KS 0.16-0.22; docs/segmentation.md)
            # (pore_map_pixels: which of each code's pixels are pore, the outline itself)
            pores = (code_pixel_blocks(masks == k - 1, vqvae.downsample) if pore_map_pixels
                     else code_counts[:, k - 1] > 0)  # fmt: skip
    return train_pixelcnn(codes, model_out, log_out, n_codes=vqvae.quantizer.n_codes,
                          class_counts=counts, class_map_counts=cell_counts,
                          class_map_classes=k - 1, class_map_marks=marks,
                          class_map_mark_classes=len(class_map_pore_sizes) + 1, pore_map=pores,
                          **train)  # fmt: skip


def _code_side(size: int, downsample: int) -> int:
    if size % downsample:
        raise InputError(f"sample size {size} px is not a multiple of the code size {downsample}")
    return size // downsample


def sample_pairs(
    vqvae_path: str | os.PathLike,
    pixelcnn_path: str | os.PathLike,
    images_out: str | os.PathLike,
    masks_out: str | os.PathLike,
    table_out: str | os.PathLike,
    *,
    n: int,
    seed: int,
    temperature: float = 1.0,
    level_temperature: dict[str, float] | None = None,
    batch_size: int = 64,
    size: int | None = None,
    png_examples: int = 16,
    calibration_rounds: int = 0,
    calibration_maps: int = 64,
    device: str = "auto",
) -> None:
    """``n`` new image + mask pairs of ``size``² px (None: the prior's training window, in
    pixels): PixelCNN code maps decoded by the VQ-VAE; batch b is drawn from seed + b. The
    prior is convolutional, so its maps may be larger than the windows it was trained on.
    A prior conditioned on class fractions gets each map's from a random real window of the
    map's size (a batch's moved to average the real fractions), shifted by
    ``calibration_rounds`` pilot batches of ``calibration_maps`` maps
    (:func:`~matgen.inference.segmentation.calibrated_fraction_shift`; 0: not shifted).
    ``level_temperature``: a factor on ``temperature`` for each level of a prior drawn in
    levels (``class_map``, ``pores``, ``codes``).
    Writes the stacks, a table (with each map's condition) and the first ``png_examples``
    pairs as PNGs in ``pairs/`` beside them."""
    import torch

    dev = select_device(device)
    vqvae = load_vqvae(vqvae_path, str(dev))
    prior, window, class_counts = load_pixelcnn(pixelcnn_path, str(dev))
    if level_temperature and not hasattr(prior, "LEVELS"):
        raise InputError(f"{pixelcnn_path}: sample.level_temperature is for a prior drawn in "
                         "levels (pixelcnn.class_map_px > 0)")  # fmt: skip
    side = window if size is None else _code_side(size, vqvae.downsample)
    shift = None
    if class_counts is not None:
        shift = calibrated_fraction_shift(prior, vqvae, class_counts, side, temperature=temperature,
                                          level_temperature=level_temperature,
                                          rounds=calibration_rounds, maps=calibration_maps,
                                          seed=seed)  # fmt: skip
    real = None if class_counts is None else real_class_fractions(class_counts)
    images, masks, rows, conditions = [], [], [], []
    for b, start in enumerate(range(0, n, batch_size)):
        k = min(batch_size, n - start)
        gen = torch.Generator().manual_seed(seed + b)
        cond = None
        if class_counts is not None:  # each map's class fractions, as a real window's
            cond = torch.from_numpy(draw_class_fractions(class_counts, k, side, gen, real) + shift)
            conditions.append(cond.numpy())
        codes = prior.sample(k, (side, side), temperature, generator=gen, cond=cond,
                             **level_kwargs(level_temperature))  # fmt: skip
        with torch.no_grad():
            image, logits = vqvae.decode_codes(codes)
            image = image + vqvae.residual_noise(tuple(image.shape), generator=gen)
        images.append(image.clamp(0, 1).cpu().numpy())
        masks.append(logits.argmax(1).cpu().numpy().astype(np.uint8))
        rows += [dict(index=start + i, batch_seed=seed + b) for i in range(k)]
    images, masks = np.concatenate(images), np.concatenate(masks)
    pairs = Path(images_out).parent / "pairs"
    for i in range(min(png_examples, n)):
        save_image(pairs / f"image_{i:04d}.png", np.round(images[i, 0] * 255).astype(np.uint8))
        save_image(pairs / f"mask_{i:04d}.png", masks[i])
    table = pd.DataFrame(rows)
    for c in range(int(masks.max()) + 1 if masks.size else 0):
        table[f"fraction_{c}"] = (masks == c).mean(axis=(1, 2))
    for c, column in enumerate(np.concatenate(conditions).T if conditions else []):
        table[f"condition_{c}"] = column  # the fractions asked for, shift included
    save_npy(images_out, images.astype(np.float16))
    save_npy(masks_out, masks)
    save_table(table_out, table)


def fields_of_view(labels: np.ndarray, size: int) -> np.ndarray:
    """Non-overlapping ``size``² windows (N·tiles, size, size) of label maps (N, H, W), row by
    row; a remainder narrower than ``size`` is dropped. ``size`` 0 keeps the whole maps."""
    if size <= 0:
        return labels
    n, h, w = labels.shape
    if size > min(h, w):
        raise InputError(f"score.field_of_view {size} px is larger than the {h} x {w} images")
    ny, nx = h // size, w // size
    cut = labels[:, : ny * size, : nx * size].reshape(n, ny, size, nx, size)
    return cut.transpose(0, 1, 3, 2, 4).reshape(n * ny * nx, size, size)


def score_segmentation(
    pred: np.ndarray, exact: np.ndarray, classes: list[str], field_of_view: int = 0
) -> dict[str, float]:
    """mIoU, the customised mIoU (classes present in the ground truth only) and per-class IoU
    over a batch of label maps, each score the mean over fields of view of ``field_of_view``²
    px (0: whole images). Small fields are where the two mIoUs part: a field without pores
    scores a few stray pore pixels as IoU 0 in the mIoU and ignores them in the customised one."""
    pred, exact = fields_of_view(pred, field_of_view), fields_of_view(exact, field_of_view)
    k = len(classes)
    per_class = np.nanmean(np.stack([iou_per_class(p, t, k) for p, t in zip(pred, exact)]), 0)
    out = {
        "miou": float(miou(pred, exact, k)),
        "miou_present": float(miou_present_classes(pred, exact, k)),
    }
    out.update({f"iou_{name}": float(v) for name, v in zip(classes, per_class)})
    return out


def train_mix(
    images_path: str | os.PathLike,
    masks_path: str | os.PathLike,
    table_path: str | os.PathLike,
    synthetic_images: str | os.PathLike | None,
    synthetic_masks: str | os.PathLike | None,
    scores_out: str | os.PathLike,
    model_out: str | os.PathLike,
    *,
    mix_name: str,
    mix: dict[str, int],
    generator_real: int = 0,
    seeds: list[int],
    classes: list[str],
    split: dict[str, int],
    score: dict[str, int] | None = None,
    **train: Any,
) -> pd.DataFrame:
    """Train one U-Net per seed on a real/synthetic mix; score each on the held-out real images
    (exact masks), per field of view of ``score["field_of_view"]`` px. ``generator_real``: how
    many real images the generator of the synthetic pairs saw (a column of the table; it may
    not exceed the mix's own real count). ``mix["epochs"]``, where given, replaces the
    training's ``epochs`` (a real-only mix at its own best budget beside the common one).
    Writes one row per seed and the first seed's model (family ``segmenter``)."""
    field_of_view = int((score or {}).get("field_of_view", 0))
    real = load_real(images_path, masks_path, table_path, split)
    n_real, n_syn_images = int(mix.get("real", 0)), float(mix.get("synthetic_images", 0))
    # a ceiling mix: many real images with perfect labels, what the U-Net can reach
    exact = bool(mix.get("exact_masks", False))
    train_masks = real["train_exact"] if exact else real["train_masks"]
    if n_real > len(real["train_images"]):
        raise InputError(
            f"mix {mix_name}: {n_real} real images asked for, the training split "
            f"has {len(real['train_images'])}"
        )
    if n_real == 0 and n_syn_images == 0:
        raise InputError(f"mix {mix_name}: no real and no synthetic images")
    if n_real and n_syn_images and generator_real > n_real:
        raise InputError(
            f"mix {mix_name}: its generator saw {generator_real} real images, more than the "
            f"mix's {n_real}"
        )
    h, w = real["train_images"].shape[-2:]
    if synthetic_images is None or not n_syn_images:
        syn_x, syn_m = np.zeros((0, 1, h, w), np.float32), np.zeros((0, h, w), np.int64)
    else:
        syn_x = np.asarray(load_stack(synthetic_images), np.float32)
        syn_m = np.load(synthetic_masks).astype(np.int64)
    need = math.ceil(n_syn_images * h * w / (syn_x.shape[-2] * syn_x.shape[-1]))
    if need > len(syn_x):
        raise InputError(
            f"mix {mix_name}: needs {need} synthetic pairs, {synthetic_images} has {len(syn_x)}"
        )
    share = n_syn_images / (n_real + n_syn_images)
    if "epochs" in mix:
        train = {**train, "epochs": int(mix["epochs"])}
    rows = []
    for seed in seeds:
        model, losses = train_segmenter(
            (real["train_images"][:n_real], train_masks[:n_real].astype(np.int64)),
            (syn_x[:need], syn_m[:need]),
            share,
            n_classes=len(classes),
            seed=seed,
            **train,
        )
        pred = segment(model, real["test_images"])
        rows.append(
            dict(
                mix=mix_name,
                seed=seed,
                real=n_real,
                synthetic_images=n_syn_images,
                generator_real=int(generator_real) if n_syn_images else 0,
                exact_masks=exact,
                synthetic_share=share,
                epochs=len(losses),
                final_loss=losses[-1],
                field_of_view=field_of_view,
                **score_segmentation(pred, real["test_exact"], classes, field_of_view),
            )
        )
        if seed == seeds[0]:
            cfg = dict(
                in_ch=int(real["train_images"].shape[1]),
                out_ch=len(classes),
                width=model.down[0].body[0].out_channels,
                depth=model.depth,
            )
            save_checkpoint(
                model_out,
                step=len(losses),
                model_config=cfg,
                include_rng=False,
                family="segmenter",
                model=model.state_dict(),
                classes=list(classes),
            )
    table = pd.DataFrame(rows)
    save_table(scores_out, table)
    return table


def pair_realism(
    real_images: np.ndarray,
    real_masks: np.ndarray,
    synthetic_images: np.ndarray,
    synthetic_masks: np.ndarray,
    pore_class: int,
    spectrum_tolerance: float = 0.2,
    shape_ks: float = 0.2,
    aspect_tolerance: float = 0.1,
    fraction_tolerance: float = 0.02,
    interface_tolerance: float = 0.1,
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Do generated pairs look like the real ones they were learnt from? Checks (rows of
    check, value, target, met) and the curves behind them (spectra, per-pore shapes, each
    class's area fraction).

    Texture and noise: radially averaged power spectrum of the generated images against real
    crops of the same size (non-overlapping, from the real images), largest |log10 ratio| over
    all frequencies ≤ ``spectrum_tolerance`` decades (missing detector noise shows as too little
    power at high frequency, a decoder grid as a peak at its period). Pore shape: mean aspect
    ratio of the generated pores over the real ones within ``aspect_tolerance`` (elongated
    pores score below 1), and the KS distance between their equivalent-diameter distributions
    ≤ ``shape_ks``; pores touching a crop border are left out of both. Phase fractions: the
    largest absolute difference of a class's area fraction, generated masks against the real
    ones (labelled pixels), ≤ ``fraction_tolerance`` (classes 0 .. ``pore_class``). Phase
    shapes: the interface length per unit phase area of each class between the matrix (0) and
    the pores (:func:`~matgen.metrics.morphology.specific_surface_area` over the area fraction,
    generated over real), the largest |ratio − 1| ≤ ``interface_tolerance`` (thin, branched
    patches where the real ones are broad score above 1; NaN where no such class is in both)."""
    from scipy.stats import ks_2samp

    from ..metrics.morphology import particle_shapes, specific_surface_area
    from ..metrics.spectra import radial_power_spectrum, spectrum_log_ratio

    size = synthetic_images.shape[-1]
    real_crops = fields_of_view(np.asarray(real_images, np.float64)[:, 0], size)
    real_mask_crops = fields_of_view(np.asarray(real_masks), size)
    frequency, real_power = radial_power_spectrum(real_crops)
    _, syn_power = radial_power_spectrum(np.asarray(synthetic_images, np.float64))
    worst = float(np.abs(spectrum_log_ratio(real_power, syn_power)).max())
    real_pores = particle_shapes(real_mask_crops == pore_class)
    syn_pores = particle_shapes(np.asarray(synthetic_masks) == pore_class)
    enough = min(len(real_pores["area"]), len(syn_pores["area"])) >= 2
    aspect = (syn_pores["aspect_ratio"].mean() / real_pores["aspect_ratio"].mean()
              if enough else np.nan)  # fmt: skip
    diameter_ks = (ks_2samp(real_pores["equivalent_diameter"],
                            syn_pores["equivalent_diameter"]).statistic
                   if enough else np.nan)  # fmt: skip
    labelled = np.asarray(real_masks)[np.asarray(real_masks) != UNLABELLED]
    generated = np.asarray(synthetic_masks)
    real_fractions = np.array([(labelled == c).mean() for c in range(pore_class + 1)])
    syn_fractions = np.array([(generated == c).mean() for c in range(pore_class + 1)])
    fraction_gap = float(np.abs(syn_fractions - real_fractions).max())

    def interface_per_area(masks: np.ndarray) -> np.ndarray:
        """Interface length per phase area (1/px) of each class between matrix and pores,
        pooled over the fields."""
        phases = [masks == c for c in range(1, pore_class)]
        return np.array([specific_surface_area(p).mean() / max(p.mean(), 1e-12) for p in phases])

    interface = {"real": interface_per_area(real_mask_crops),
                 "generated": interface_per_area(generated)}  # fmt: skip
    present = [c - 1 for c in range(1, pore_class)
               if min(real_fractions[c], syn_fractions[c]) > 0]  # fmt: skip
    interface_gap = (float(np.abs(interface["generated"][present] / interface["real"][present]
                                  - 1).max()) if present else np.nan)  # fmt: skip
    rows = [
        dict(check="phase_fraction_max_abs_difference", value=fraction_gap,
             target=f"<= {fraction_tolerance:g}", met=fraction_gap <= fraction_tolerance),
        dict(check="power_spectrum_max_abs_log10_ratio", value=worst,
             target=f"<= {spectrum_tolerance:g}", met=worst <= spectrum_tolerance),
        dict(check="pore_aspect_ratio_generated_over_real", value=aspect,
             target=f"in [{1 - aspect_tolerance:g}, {1 + aspect_tolerance:g}]",
             met=bool(abs(aspect - 1) <= aspect_tolerance)),
        dict(check="pore_equivalent_diameter_ks", value=diameter_ks, target=f"<= {shape_ks:g}",
             met=bool(diameter_ks <= shape_ks)),
        dict(check="phase_interface_per_area_max_abs_ratio_minus_1", value=interface_gap,
             target=f"<= {interface_tolerance:g}" if present else "",
             met=bool(interface_gap <= interface_tolerance) if present else np.nan),
    ]  # fmt: skip
    for name, values in interface.items():
        rows += [dict(check=f"phase{c}_interface_per_area_{name}", value=float(v), target="",
                      met=np.nan) for c, v in enumerate(values, start=1)]  # fmt: skip
    for name, pores in (("real", real_pores), ("generated", syn_pores)):
        rows += [
            dict(check=f"pore_{key}_{name}", value=float(pores[key].mean()) if enough else np.nan,
                 target="", met=np.nan)
            for key in ("aspect_ratio", "circularity", "equivalent_diameter")
        ]  # fmt: skip
    curves = dict(
        frequency=frequency,
        real_power=real_power,
        synthetic_power=syn_power,
        real_fractions=real_fractions,
        synthetic_fractions=syn_fractions,
    )
    curves.update({f"{name}_pore_{key}": pores[key]
                   for name, pores in (("real", real_pores), ("generated", syn_pores))
                   for key in ("aspect_ratio", "equivalent_diameter")})  # fmt: skip
    return rows, curves


def generator_checks(
    vqvae_path: str | os.PathLike,
    images_path: str | os.PathLike,
    masks_path: str | os.PathLike,
    table_path: str | os.PathLike,
    synthetic_images: str | os.PathLike,
    synthetic_masks: str | os.PathLike,
    real_segmenter: str | os.PathLike,
    checks_out: str | os.PathLike,
    curves_out: str | os.PathLike,
    *,
    classes: list[str],
    split: dict[str, int],
    generator_real: int = 0,
    device: str = "auto",
) -> pd.DataFrame:
    """The generator's targets: VQ-VAE reconstruction mask mIoU on held-out real pairs (≥ 0.9,
    over what its codes encode: :func:`reconstruction_miou`);
    agreement of generated masks with generated images — a U-Net trained on real data only
    segments the generated images, scored against the generated masks (mIoU ≥ 0.7), beside the
    same judge on the real annotated pairs the generator saw (what a real pair reaches) and the
    ratio of the two; and the realism of the pairs against the ``generator_real`` real training
    pairs the generator saw (0: all; :func:`pair_realism`, curves to ``curves_out``). Pores are
    the last class."""
    import torch

    dev = select_device(device)
    real = _first_real(load_real(images_path, masks_path, table_path, split), generator_real)
    vqvae = load_vqvae(vqvae_path, str(dev))
    x = torch.from_numpy(real["test_images"]).to(dev)
    m = real["test_masks"].astype(np.int64)
    with torch.no_grad():
        recon, logits, _, _ = vqvae(x, torch.from_numpy(m).to(dev))
    k = len(classes)
    recon_miou = reconstruction_miou(vqvae, logits.argmax(1).cpu(), m, k)
    recon_mse = float(((recon.cpu().numpy() - real["test_images"]) ** 2).mean())
    model, _ = load_segmenter(real_segmenter, str(dev))
    syn_x = np.asarray(load_stack(synthetic_images), np.float32)
    syn_m = np.load(synthetic_masks)
    agree = float(miou(segment(model, syn_x), syn_m, k))
    # the same judge on the real annotated pairs the generator saw: hand-drawn masks move
    # boundaries and miss small objects, so real pairs do not agree perfectly either
    real_agree = float(
        miou(segment(model, real["train_images"]), real["train_masks"], k, UNLABELLED)
    )
    realism, curves = pair_realism(
        real["train_images"], real["train_masks"], syn_x, syn_m, pore_class=k - 1
    )
    rows = [
        dict(check="vqvae_reconstruction_mask_miou", value=recon_miou, target=">= 0.9",
             met=recon_miou >= 0.9),
        dict(check="vqvae_reconstruction_image_mse", value=recon_mse, target="", met=np.nan),
        dict(check="generated_mask_image_agreement_miou", value=agree, target=">= 0.7",
             met=agree >= 0.7),
        dict(check="real_mask_image_agreement_miou", value=real_agree, target="", met=np.nan),
        dict(check="generated_over_real_agreement", value=agree / real_agree, target="",
             met=np.nan),
        *realism,
    ]  # fmt: skip
    for name in ("synthetic", "real"):  # the fractions pair_realism compared
        rows += [dict(check=f"{name}_fraction_{c}", value=float(f), target="", met=np.nan)
                 for c, f in zip(classes, curves[f"{name}_fractions"])]  # fmt: skip
    checks = pd.DataFrame(rows)
    save_npz(curves_out, **curves)
    save_table(checks_out, checks)
    return checks


def reconstruction_miou(
    vqvae: "torch.nn.Module", predicted: "torch.Tensor", annotated: np.ndarray, n_classes: int
) -> float:
    """mIoU of a VQ-VAE's reconstructed masks (N, H, W) against the annotated ones, over what
    its codes encode (``encoder_mask``): every class (``all``); the phases with each pore
    filled by the phase round it in both (``phases``: the pores are decoded from the image, and
    are meant to differ from the hand-drawn ones); NaN where the codes encode no mask
    (``none``)."""
    import torch

    from ..models.vqvae import fill_last_class

    seen = vqvae.encoder_mask
    if seen == "none":
        return float("nan")
    if seen == "all":
        return float(miou(predicted.numpy(), annotated, n_classes, UNLABELLED))
    labelled = annotated != UNLABELLED
    ann = torch.from_numpy(np.where(labelled, annotated, 0).astype(np.int64))
    filled_ann = fill_last_class(ann, n_classes).argmax(1).numpy()
    filled_pred = fill_last_class(predicted.long(), n_classes).argmax(1).numpy()
    target = np.where(labelled, filled_ann, UNLABELLED)
    return float(miou(filled_pred, target, n_classes - 1, UNLABELLED))


def summarise_mixes(
    score_files: list[str | os.PathLike],
    runs_out: str | os.PathLike,
    summary_out: str | os.PathLike,
) -> pd.DataFrame:
    """All runs in one table, and mean ± standard deviation over seeds per mix, with whether
    real + synthetic beats real only at the smallest real count (the best of the real-only
    mixes there, where several budgets were trained)."""
    runs = pd.concat([pd.read_csv(f) for f in score_files], ignore_index=True)
    save_table(runs_out, runs)
    metrics = ["miou", "miou_present"]
    g = runs.groupby("mix", sort=False)
    summary = g[
        [
            c
            for c in (
                "real",
                "synthetic_images",
                "generator_real",
                "exact_masks",
                "synthetic_share",
                "epochs",
                "field_of_view",
            )
            if c in runs
        ]
    ].first()
    for mcol in metrics:
        summary[f"{mcol}_mean"] = g[mcol].mean()
        summary[f"{mcol}_std"] = g[mcol].std(ddof=1).fillna(0.0)
    summary["n_seeds"] = g.size()
    summary = summary.reset_index()
    annotated = ~summary["exact_masks"].astype(bool) if "exact_masks" in summary else True
    with_real = summary[(summary["real"] > 0) & annotated]
    if len(with_real):
        fewest = with_real["real"].min()
        group = with_real[with_real["real"] == fewest]
        base = group[group["synthetic_images"] == 0]
        mixed = group[group["synthetic_images"] > 0]
        beats = [np.nan] * len(summary)
        if len(base) and len(mixed):
            reference = base["miou_present_mean"].max()  # real only at its best budget
            for i in mixed.index:
                beats[i] = bool(summary.loc[i, "miou_present_mean"] > reference)
        summary["beats_real_only_at_fewest_real"] = pd.Series(beats, dtype=object)
    save_table(summary_out, summary)
    return summary


def evaluate_segmentation(
    inputs: dict[str, Any],
    outputs: dict[str, str],
    *,
    classes: list[str],
    split: dict[str, int],
    generator_real: int = 0,
) -> pd.DataFrame:
    """The evaluation stage: the runs table and per-mix summary, then the checks of the
    generator of ``generator_real`` real images."""
    scores = inputs["scores"]
    summarise_mixes(
        [scores] if isinstance(scores, str) else list(scores), outputs["runs"], outputs["summary"]
    )
    return generator_checks(
        inputs["vqvae"],
        inputs["images"],
        inputs["masks"],
        inputs["table"],
        inputs["synthetic_images"],
        inputs["synthetic_masks"],
        inputs["real_segmenter"],
        outputs["checks"],
        outputs["curves"],
        classes=classes,
        split=split,
        generator_real=generator_real,
    )
