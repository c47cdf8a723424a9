"""Train the fully convolutional vacancy detector (res-U-Net → per-pixel vacancy probability).

Output channel 0 is the vacancy heatmap: its target a unit-height Gaussian (``sigma_px``) at
each labelled vacancy, whatever its type; the loss binary cross-entropy with the rare positive
pixels up-weighted (``pos_weight``). Where the labels have several types (V_Se, V_Se2, V_W in
the embedded data) C more channels classify the type, trained by cross-entropy only on the
pixels next to a vacancy, rare types weighted up by their inverse frequency: detection stays
one task on all vacancies, and the type is a second question asked where there is one. Each
epoch draws
``steps_per_epoch`` batches of random ``crop``² windows with random D4 transforms from the
training images, so the net never sees a fixed tiling. Seeded and resumable per epoch.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import numpy as np
import pandas as pd

from ..data.augment import random_d4_windows
from ..data.ingest import load_stack
from ..data.points import load_points, point_heatmap
from ..errors import InputError
from ..util import bfloat16_autocast, seed_everything, select_device
from .loop import TrainingRun
from .losses import vacancy_detection_loss


def _augmented(batch: np.ndarray, rng: np.random.Generator, augment: dict[str, Any]) -> np.ndarray:
    """The crops (B, 1, h, w), a share ``augment["p"]`` of them through
    :func:`microscope_augment` with the ranges in ``augment``."""
    from ..data.augment import microscope_augment

    ranges = {k: tuple(v) for k, v in augment.items() if k != "p"}
    out = batch.copy()
    for b in np.flatnonzero(rng.random(len(batch)) < float(augment.get("p", 1.0))):
        out[b, 0] = microscope_augment(batch[b, 0], rng, **ranges)
    return out


def _training_batch(
    images: np.ndarray,
    targets: np.ndarray,
    rng: np.random.Generator,
    batch_size: int,
    crop: int,
    augment: dict[str, Any] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Random ``crop``² windows of random images, each in a random D4 orientation, with their
    targets; the images' crops through :func:`_augmented` where ``augment`` is set."""
    x, t = random_d4_windows((images, targets), batch_size, crop, rng)
    if augment:  # its draws from rng follow the windows'
        x = _augmented(x, rng, augment)
    return x, t


def _detector_targets(
    points: list[np.ndarray], point_types: list[np.ndarray], shape: tuple[int, int], sigma: float
) -> tuple[np.ndarray, list[str]]:
    """Targets (N, 1, H, W) — the vacancy heatmap — or, with several types in the labels,
    (N, 2, H, W) with each pixel's type index (where a vacancy's Gaussian is ≥ ½, else −1) in
    the second channel; and the types in sorted order (the type channels' order)."""
    types = sorted(set(np.concatenate(point_types).tolist()))
    targets = []
    for p, t in zip(points, point_types):
        if len(types) > 1:  # the heatmap is the maximum of the per-type ones
            per_type = np.stack([point_heatmap(p[t == kind], shape, sigma) for kind in types])
            heat = per_type.max(0)
            index = np.where(heat >= 0.5, per_type.argmax(0), -1)
            targets.append(np.stack([heat, index.astype(np.float32)]))
        else:
            targets.append(point_heatmap(p, shape, sigma)[None])
    return np.stack(targets), types


def _inference_copy(model: Any, pos_weight: float) -> Any:
    """The trained ``model`` as inference sees it (its odds unweighted, eval mode), on a copy:
    the weights saved are the trained ones."""
    import copy

    from ..inference.detector import unweight_vacancy_odds

    return unweight_vacancy_odds(copy.deepcopy(model).eval(), pos_weight)


def _calibrated_threshold(
    probe: Any,
    types: list[str],
    images: np.ndarray,
    points: list[np.ndarray],
    augment: dict[str, Any] | None,
    tolerance_angstrom: float,
    pixel_size: float,
    seed: int,
) -> tuple[float, tuple[float, float]]:
    """The operating point of the detector ``probe`` (:func:`_inference_copy`) on its training
    images, peaks at least 1 Å apart, as detection's default. Returns the threshold of the best
    F1 and the range of thresholds within one standard error of it
    (:func:`matgen.pipeline.stem.f1_plateau`)."""
    from ..pipeline.stem import calibrate_threshold, f1_plateau

    threshold, curve = calibrate_threshold(
        probe, types, images, points, tolerance_px=tolerance_angstrom / pixel_size,
        min_distance_px=max(1, round(1.0 / pixel_size)), augment=augment, seed=seed,
    )  # fmt: skip
    return threshold, f1_plateau(curve, sum(len(p) for p in points))


def _check_training_inputs(
    images_path: str | os.PathLike,
    points_path: str | os.PathLike,
    shape: tuple[int, int],
    points: list[np.ndarray],
    crop: int,
    depth: int,
) -> None:
    """Refuse a crop the images or the U-Net's depth cannot take, and labels without a point."""
    h, w = shape
    if crop % 2**depth or crop > min(h, w):
        raise InputError(
            f"{images_path}: crop {crop} must fit the {h} x {w} images and be a "
            f"multiple of {2**depth}"
        )
    if sum(len(p) for p in points) == 0:
        raise InputError(f"{points_path}: no vacancy labels to learn from")


def _check_operating_point(
    operating_point: str,
    images_path: str | os.PathLike | None,
    table_path: str | os.PathLike | None,
    pixel_size: float,
) -> None:
    """Refuse, before any training, an operating point this run could not set."""
    if operating_point not in ("training", "experiment"):
        raise InputError(
            f"operating_point {operating_point!r}: expected 'training' or 'experiment'"
        )
    if operating_point == "training":
        return
    if images_path is None or table_path is None:
        raise InputError(
            "operating_point 'experiment' needs the experimental images and their table"
        )
    px = float(pd.read_csv(table_path)["pixel_size"].iloc[0])
    if abs(px - pixel_size) > 1e-6 * pixel_size:
        raise InputError(
            f"{images_path}: experimental images at {px} Å/px but the detector trains at "
            f"{pixel_size} Å/px; ingest them at the training pixel size"
        )


def _experiment_threshold(
    probe: Any,
    types: list[str],
    pixel_size: float,
    images_path: str | os.PathLike,
    fallback: float,
    plateau: tuple[float, float],
) -> float:
    """The valley of the detector ``probe``'s (:func:`_inference_copy`) peak scores on the
    unlabelled experimental images (:func:`matgen.pipeline.stem.score_valley_threshold`), brought
    into ``plateau`` — the thresholds the training images' labels cannot tell from their best
    — where it falls outside (a detector whose scores hold no low tail there has no valley,
    and Otsu's level then cuts its one population in two); ``fallback`` (the training-image
    threshold) where they hold too few candidate peaks to split. Says which in the log."""
    from ..pipeline.stem import score_valley_threshold

    images = np.asarray(load_stack(images_path), dtype=np.float32)
    threshold, scores = score_valley_threshold(
        probe, types, images, min_distance_px=max(1, round(1.0 / pixel_size))
    )
    where = f"{len(scores)} candidate peaks in {len(images)} experimental images ({images_path})"
    if threshold is None:
        print(f"operating point {fallback:.3f} (training images): too few {where}", file=sys.stderr)
        return fallback
    chosen = float(np.clip(threshold, *plateau))
    above = int((scores >= chosen).sum())
    print(f"operating point {chosen:.3f}: the valley ({threshold:.3f}) of the scores of {where}, "
          f"within the training images' plateau {plateau[0]:.2f}-{plateau[1]:.2f} (best F1 at "
          f"{fallback:.2f}); {above} candidates above it", file=sys.stderr)  # fmt: skip
    return chosen


def _loss_weights(pos_weight: float, counts: np.ndarray, typed: bool, dev: Any) -> tuple[Any, Any]:
    """The heatmap's positive weight and, for a typed detector, per-type weights by inverse
    frequency: rare types count as much as the commonest in both losses."""
    import torch

    balance = counts.sum() / (len(counts) * counts)
    type_weight = torch.tensor(balance, dtype=torch.float32, device=dev) if typed else None
    return torch.tensor(pos_weight, device=dev), type_weight


def train_vacancy_detector(
    images_path: str | os.PathLike,
    table_path: str | os.PathLike,
    points_path: str | os.PathLike,
    model_out: str | os.PathLike,
    log_out: str | os.PathLike,
    *,
    seed: int = 0,
    epochs: int = 20,
    steps_per_epoch: int = 50,
    batch_size: int = 8,
    crop: int = 64,
    width: int = 16,
    depth: int = 3,
    lr: float = 1e-3,
    sigma_px: float = 1.5,
    pos_weight: float = 20.0,
    device: str = "auto",
    show_progress: bool = True,
    augment: dict[str, Any] | None = None,
    calibration_tolerance_angstrom: float = 1.0,
    local_contrast_angstrom: float = 0.0,
    amp: bool = False,
    operating_point: str = "training",
    experiment_images_path: str | os.PathLike | None = None,
    experiment_table_path: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Fit a res-U-Net to images (N, 1, H, W) in [0, 1] and their vacancy points.

    ``augment`` (ranges of :func:`matgen.data.augment.microscope_augment`, plus ``p``, the
    share of crops augmented): such a crop gets another day at the microscope (dose, blur, row
    jitter, background) on top of what the training images hold. Writes ``model_out``
    (family ``vacancy_detector``: model config, weights, the training pixel size in Å, the
    vacancy ``types`` of its type channels, ``sigma_px``, ``pos_weight``, the ``threshold`` of
    its operating point: with ``operating_point`` 'training' the best F1 on the training images
    (fresh draws of ``augment``; matches within ``calibration_tolerance_angstrom``;
    :func:`matgen.pipeline.stem.calibrate_threshold`), with 'experiment' the valley of its peak
    scores on the unlabelled experimental images (``experiment_images_path``, at the training
    pixel size: :func:`matgen.pipeline.stem.score_valley_threshold`) within the thresholds
    whose training F1 is within one standard error of the best, all kept (``threshold``,
    ``threshold_training``, ``threshold_plateau``)) and a CSV log of loss per epoch.
    ``local_contrast_angstrom`` > 0: the network first normalises each pixel by its Gaussian
    neighbourhood's mean and sd (:class:`matgen.models.unet.LocalContrast`), so background,
    contamination and gain need not be learnt. ``amp``: bfloat16 autocast in training where
    native (:func:`matgen.util.bfloat16_autocast`; local contrast and loss in float32).
    """
    import torch

    from ..models.unet import UNet

    images = np.asarray(load_stack(images_path), dtype=np.float32)
    px = float(pd.read_csv(table_path)["pixel_size"].iloc[0])
    points, point_types = load_points(points_path, len(images))
    h, w = images.shape[-2:]
    _check_training_inputs(images_path, points_path, (h, w), points, crop, depth)
    _check_operating_point(operating_point, experiment_images_path, experiment_table_path, px)
    targets, types = _detector_targets(points, point_types, (h, w), sigma_px)
    counts = np.array([sum((t == k).sum() for t in point_types) for k in types], float)
    dev = select_device(device)
    use_amp = bfloat16_autocast(dev, amp)
    seed_everything(seed)
    typed = len(types) > 1
    cfg = dict(in_ch=1, out_ch=1 + len(types) * typed, width=width, depth=depth, residual=True)
    if local_contrast_angstrom > 0:
        cfg["local_contrast_px"] = local_contrast_angstrom / px
    model = UNet(**cfg).to(dev)
    opt, run = TrainingRun.with_adam(model_out, log_out, model, cfg, lr=lr, epochs=epochs,
                                     device=dev, desc="detector",
                                     show_progress=show_progress)  # fmt: skip
    weight, type_weight = _loss_weights(pos_weight, counts, typed, dev)
    for epoch in run.steps():
        rng = np.random.default_rng([seed, epoch])  # a function of the epoch: resumable
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + np.cos(np.pi * epoch / epochs))
        model.train()
        total = 0.0
        for _ in range(steps_per_epoch):
            x, t = _training_batch(images, targets, rng, batch_size, crop, augment)
            x = torch.from_numpy(np.ascontiguousarray(x)).to(dev)
            t = torch.from_numpy(np.ascontiguousarray(t)).to(dev)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_amp):
                logits = model(x)
            loss = vacancy_detection_loss(logits.float(), t, weight, type_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
        run.end_step(epoch + 1, dict(loss=total / steps_per_epoch, lr=opt.param_groups[0]["lr"]))
    probe = _inference_copy(model, pos_weight)
    threshold_training, plateau = _calibrated_threshold(
        probe, types, images, points, augment, calibration_tolerance_angstrom, px, seed
    )
    threshold = threshold_training
    if operating_point == "experiment":
        threshold = _experiment_threshold(
            probe, types, px, experiment_images_path, threshold_training, plateau
        )
    summary = {
        "epochs": epochs,
        "seconds": time.time() - run.started,
        "threshold": threshold,
        "threshold_training": threshold_training,
        "threshold_plateau": list(plateau),
        "operating_point": operating_point,
        "n_images": len(images),
        "n_vacancies": int(sum(len(p) for p in points)),
        "n_per_type": dict(zip(types, counts.astype(int).tolist())),
    }
    run.finish(
        "vacancy_detector",
        pixel_size=px,
        types=types,
        sigma_px=sigma_px,
        pos_weight=float(pos_weight),
        threshold=threshold,
        threshold_training=threshold_training,
        threshold_plateau=list(plateau),
        summary=summary,
    )
    return summary
