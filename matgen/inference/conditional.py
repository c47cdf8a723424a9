"""Polysilicon models: load a conditional VAE / GAN / CNN judge and let the judge score images."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from ..checkpoint import load_trained_weights, read_model_checkpoint
from ..data.conditions import Conditioning

if TYPE_CHECKING:  # torch is imported where it is used: the CLI starts fast
    import torch


def judge(
    model: "torch.nn.Module", images: np.ndarray, cond: Conditioning, batch_size: int = 256
) -> dict[str, np.ndarray]:
    """The CNN's predicted class index, E11 (GPa) and feature vectors for images in [0, 1]."""
    import torch

    dev = next(model.parameters()).device
    model.eval()
    classes, targets, feats = [], [], []
    with torch.no_grad():
        for s in range(0, len(images), batch_size):
            x = torch.from_numpy(np.asarray(images[s : s + batch_size], np.float32)).to(dev)
            logits, pred, f = model(x)
            classes.append(logits.argmax(1).cpu().numpy())
            targets.append(pred.cpu().numpy() * cond.target_std + cond.target_mean)
            feats.append(f.cpu().numpy())
    model.train()
    return {
        "class_index": np.concatenate(classes),
        "target": np.concatenate(targets),
        "features": np.concatenate(feats),
    }


def load_conditional(
    path: str | os.PathLike, family: str, device: str = "cpu"
) -> tuple[Any, Conditioning]:
    """(model, conditioning) of a cvae / cgan (its generator) / cnn checkpoint, in eval mode."""
    from ..models.cnn import MicrostructureCNN
    from ..models.tessellation import TessellationGenerator, TessellationVAE

    payload = read_model_checkpoint(path, family, device)
    build = {
        "cvae": (TessellationVAE, "model"),
        "cgan": (TessellationGenerator, "G"),
        "cnn": (MicrostructureCNN, "model"),
    }[family]
    model = load_trained_weights(
        build[0](**payload["model_config"]), payload[build[1]], path, device
    )
    return model, Conditioning.from_dict(payload["conditioning"])
