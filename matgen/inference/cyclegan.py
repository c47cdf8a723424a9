"""CycleGAN: load one generator of a model file and translate tiles with it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from ..checkpoint import load_trained_weights, read_model_checkpoint
from ..models.cyclegan import build_cyclegan
from ..util import progress

if TYPE_CHECKING:  # torch is imported where it is used: the CLI starts fast
    import torch


def load_cyclegan_generator(
    path: str | os.PathLike,
    direction: str = "G_LH",
    device: str = "cpu",
    return_tile_size: bool = False,
) -> Any:
    """One generator (``G_LH`` or ``G_HL``) of a CycleGAN checkpoint, in eval mode; with
    ``return_tile_size`` also the size of the tiles it was trained on (its input side)."""
    payload = read_model_checkpoint(path, "cyclegan", device)
    net = load_trained_weights(
        build_cyclegan(payload["model_config"])[direction],
        payload[direction],
        path,
        device,
        f"{direction} weights",
    )
    if not return_tile_size:
        return net
    low = int(payload.get("tile_size", 0))
    return net, (low if direction == "G_LH" else int(low * payload["model_config"]["scale"]))


def translate(
    generator: "torch.nn.Module",
    tiles: np.ndarray,
    batch_size: int = 32,
    show_progress: bool = False,
    input_noise: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """Apply a generator to tiles in [0, 1] (N, C, h, h) → float32 tiles in [0, 1], batched.

    ``input_noise`` adds the N(0, σ²) input noise the generator was trained with (σ in [-1, 1]
    units), drawn from ``seed`` so a translation is reproducible."""
    import torch

    dev = next(generator.parameters()).device
    starts = range(0, len(tiles), batch_size)
    if show_progress:
        starts = progress(starts, desc="translating", total=len(starts))
    out = []
    with torch.no_grad():
        for s in starts:
            x = torch.from_numpy(np.array(tiles[s : s + batch_size], dtype=np.float32)).to(dev)
            with torch.autocast(
                device_type=dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"
            ):
                x = x * 2 - 1
                if input_noise > 0:
                    gen = torch.Generator().manual_seed(seed + s)
                    x = x + input_noise * torch.randn(x.shape, generator=gen).to(dev)
                y = generator(x)
            out.append(((y.float() + 1) / 2).clamp(0, 1).cpu().numpy())
    return np.concatenate(out) if out else np.empty((0,) + tiles.shape[1:], np.float32)
