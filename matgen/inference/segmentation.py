"""Segmentation study: load the VQ-VAE, its PixelCNN prior and the U-Net segmenters; encode
image + mask pairs to code maps and segment micrographs."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from ..checkpoint import load_trained_weights, read_model_checkpoint

if TYPE_CHECKING:  # torch is imported where it is used: the CLI starts fast
    import torch

UNLABELLED = 255


def load_vqvae(path: str | os.PathLike, device: str = "cpu") -> "torch.nn.Module":
    from ..models.vqvae import VQVAE

    payload = read_model_checkpoint(path, "vqvae", device)
    return load_trained_weights(VQVAE(**payload["model_config"]), payload["model"], path, device)


def encode_codes(
    vqvae: "torch.nn.Module", images: np.ndarray, masks: np.ndarray, batch_size: int = 16
) -> np.ndarray:
    """Code maps (N, H/d, W/d) int64 of whole images + masks (unlabelled pixels as class 0)."""
    import torch

    dev = next(vqvae.parameters()).device
    out = []
    with torch.no_grad():
        for s in range(0, len(images), batch_size):
            x = torch.from_numpy(np.asarray(images[s : s + batch_size], np.float32)).to(dev)
            m = np.asarray(masks[s : s + batch_size]).astype(np.int64)
            m = torch.from_numpy(np.where(m == UNLABELLED, 0, m)).to(dev)
            out.append(vqvae.encode(x, m)[2].cpu().numpy())
    return np.concatenate(out)


def load_pixelcnn(path: str | os.PathLike, device: str = "cpu") -> tuple["torch.nn.Module", int]:
    from ..models.pixelcnn import GatedPixelCNN

    payload = read_model_checkpoint(path, "pixelcnn", device)
    model = GatedPixelCNN(**payload["model_config"])
    return load_trained_weights(model, payload["model"], path, device), int(payload["window"])


def segment(model: "torch.nn.Module", images: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """Label maps (N, H, W) uint8 of images (N, C, H, W) in [0, 1]; sides padded (reflect) to a
    multiple of the U-Net's 2^depth and cropped back."""
    import torch

    dev = next(model.parameters()).device
    mult = 2**model.depth
    h, w = images.shape[-2:]
    ph, pw = (-h) % mult, (-w) % mult
    out = []
    with torch.no_grad():
        for s in range(0, len(images), batch_size):
            x = np.asarray(images[s : s + batch_size], np.float32)
            if ph or pw:
                x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect")
            logits = model(torch.from_numpy(x).to(dev))
            out.append(logits.argmax(1)[:, :h, :w].cpu().numpy().astype(np.uint8))
    return np.concatenate(out)


def load_segmenter(
    path: str | os.PathLike, device: str = "cpu"
) -> tuple["torch.nn.Module", list[str]]:
    from ..models.unet import UNet

    payload = read_model_checkpoint(path, "segmenter", device)
    model = load_trained_weights(UNet(**payload["model_config"]), payload["model"], path, device)
    return model, list(payload["classes"])
