"""STEM vacancy detector: load a trained res-U-Net with its pixel size."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..checkpoint import load_trained_weights, read_model_checkpoint

if TYPE_CHECKING:  # torch is imported where it is used: the CLI starts fast
    import torch


def load_vacancy_detector(
    path: str | os.PathLike, device: str = "cpu"
) -> tuple["torch.nn.Module", float]:
    """The detector of a checkpoint in eval mode and the pixel size (Å) it was trained at.

    Training up-weights the positive pixels by ``pos_weight``, which multiplies the odds that
    the sigmoid reports by that factor; the output bias is shifted by −log(pos_weight) here, so
    that sigmoid(logits) is the vacancy probability under the true class balance and a threshold
    of 0.5 means "more likely a vacancy than not" whatever ``pos_weight`` was.
    """
    import math

    import torch

    from ..models.unet import UNet

    payload = read_model_checkpoint(path, "vacancy_detector", device)
    model = load_trained_weights(UNet(**payload["model_config"]), payload["model"], path, device)
    with torch.no_grad():
        model.head.bias -= math.log(float(payload.get("pos_weight", 1.0)))
    return model, float(payload["pixel_size"])
