"""STEM vacancy detector: load a trained res-U-Net with its pixel size and vacancy types."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, NamedTuple

from ..checkpoint import load_trained_weights, read_model_checkpoint
from ..data.points import UNTYPED

if TYPE_CHECKING:  # torch is imported where it is used: the CLI starts fast
    import torch


class VacancyDetector(NamedTuple):
    """A trained detector: the network (channel 0 the vacancy heatmap; with several types one
    more channel per type, logits of the type), the pixel size (Å) it was trained at, the
    vacancy types (one, untyped, for labels without types), the probability threshold of its
    operating point (:func:`matgen.pipeline.stem.calibrate_threshold` on its own training images,
    or the valley of its scores on experimental ones) and, where that valley was taken, the
    thresholds its training labels could not tell from their best (else None)."""

    model: "torch.nn.Module"
    pixel_size: float
    types: list[str]
    threshold: float = 0.5  # checkpoints from before calibration: 0.5
    plateau: tuple[float, float] | None = None


def unweight_vacancy_odds(model: "torch.nn.Module", pos_weight: float) -> "torch.nn.Module":
    """Shift the heatmap channel's output bias by −log(``pos_weight``), in place: training
    multiplies the odds of a vacancy pixel by ``pos_weight``, and this undoes it."""
    import math

    import torch

    with torch.no_grad():
        model.head.bias[0] -= math.log(pos_weight)
    return model


def detector_threshold(path: str | os.PathLike) -> float:
    """The calibrated probability threshold of a detector checkpoint (0.5 for one saved before
    calibration), read without building the network."""
    return _operating_point(read_model_checkpoint(path, "vacancy_detector", "cpu"))


def _operating_point(payload: dict) -> float:
    """A checkpoint payload's calibrated threshold; 0.5 for one saved before calibration."""
    return float(payload.get("threshold", VacancyDetector._field_defaults["threshold"]))


def load_vacancy_detector(path: str | os.PathLike, device: str = "cpu") -> VacancyDetector:
    """The detector of a checkpoint in eval mode, its pixel size (Å) and vacancy types.

    Training up-weights the positive pixels by ``pos_weight``, which multiplies the odds that
    the sigmoid reports by that factor; the output bias is shifted by −log(pos_weight) here, so
    that sigmoid(logits) is the vacancy probability under the true class balance and a threshold
    of 0.5 means "more likely a vacancy than not" whatever ``pos_weight`` was (the heatmap
    channel only: the type channels are a softmax, unweighted by it).
    """
    from ..models.unet import UNet

    payload = read_model_checkpoint(path, "vacancy_detector", device)
    model = load_trained_weights(UNet(**payload["model_config"]), payload["model"], path, device)
    unweight_vacancy_odds(model, float(payload.get("pos_weight", 1.0)))
    types = [str(t) for t in payload.get("types", [UNTYPED])]  # untyped before types existed
    plateau = payload.get("threshold_plateau")
    return VacancyDetector(
        model, float(payload["pixel_size"]), types, _operating_point(payload),
        None if plateau is None else (float(plateau[0]), float(plateau[1])),
    )  # fmt: skip
