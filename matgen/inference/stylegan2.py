"""StyleGAN2: load the EMA generator of a model file and draw tiles from seeds."""

from __future__ import annotations

import os

import numpy as np

from ..checkpoint import load_trained_weights, read_model_checkpoint
from ..util import progress


MODEL_KEYS = ("resolution", "z_dim", "w_dim", "n_mapping", "channel_base", "channel_max",
              "img_channels")


def load_stylegan2(path: str | os.PathLike, device: str = "cpu") -> "Generator":
    """The EMA generator of a StyleGAN2 checkpoint, in eval mode; one-line error otherwise."""
    from ..models.stylegan2 import Generator

    payload = read_model_checkpoint(path, "stylegan2", device)
    cfg = payload["model_config"]
    return load_trained_weights(Generator(**{k: cfg[k] for k in MODEL_KEYS}), payload["G_ema"],
                                path, device)


def latents_from_seeds(G: "Generator", seeds: np.ndarray, device: "torch.device | str" = "cpu"
                       ) -> tuple["torch.Tensor", list["torch.Tensor"]]:
    """z (N, z_dim) and one noise map per layer (N, 1, r, r), all drawn from each tile's own
    seed, so a tile is a function of its seed alone and can be regenerated from the table.

    z comes from the CPU generator (the same latent on any machine); the noise maps are drawn
    on ``device`` (fast on GPUs; a GPU's random stream differs from the CPU's)."""
    import torch

    layers = [G.conv1, *G.convs]
    zs, noises = [], [[] for _ in layers]
    for s in seeds:
        zs.append(torch.randn(G.z_dim, generator=torch.Generator().manual_seed(int(s))))
        g = torch.Generator(device=device).manual_seed(int(s) + 1)
        for k, layer in enumerate(layers):
            noises[k].append(torch.randn(layer.noise_const.shape[1:], generator=g, device=device))
    return torch.stack(zs).to(device), [torch.stack(n) for n in noises]


def generate(G: "Generator", seeds: np.ndarray, batch_size: int = 64, truncation_psi: float = 1.0,
             noise_mode: str = "seeded", show_progress: bool = False) -> np.ndarray:
    """Images in [0, 1] (N, C, R, R) float32, one per seed, batched and without gradients.

    ``noise_mode``: ``seeded`` (per-pixel noise drawn from the tile's seed: the stochastic
    detail — here, where the pores sit — varies between tiles but is reproducible), ``const``
    (the generator's fixed noise maps) or ``none``.
    """
    import torch

    dev = next(G.parameters()).device
    out = np.empty((len(seeds), G.to_rgb1.bias.numel(), G.resolution, G.resolution), np.float32)
    starts = range(0, len(seeds), batch_size)
    if show_progress:
        starts = progress(starts, desc="sampling", total=len(starts))
    use_amp = dev.type == "cuda"
    with torch.no_grad():
        for s in starts:
            z, noises = latents_from_seeds(G, seeds[s:s + batch_size], dev)
            noises = noises if noise_mode == "seeded" else None
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=use_amp):
                w = G.map(z, truncation_psi)
                ws = w[:, None].repeat(1, G.num_ws, 1)
                x = G.synthesis(ws, "random" if noise_mode == "seeded" else noise_mode, noises)
            out[s:s + len(z)] = ((x.float() + 1) / 2).clamp(0, 1).cpu().numpy()
    return out
