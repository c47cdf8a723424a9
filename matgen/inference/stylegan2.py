"""StyleGAN2: load the EMA generator of a model file and draw tiles from seeds."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..checkpoint import load_trained_weights, read_model_checkpoint
from ..util import progress

if TYPE_CHECKING:  # torch is imported where it is used: the CLI starts fast
    import torch

    from ..models.stylegan2 import Generator

MODEL_KEYS = (
    "resolution",
    "z_dim",
    "w_dim",
    "n_mapping",
    "channel_base",
    "channel_max",
    "img_channels",
    "noise_min_resolution",  # absent from older checkpoints: noise at every layer
    "noise_max_resolution",  # absent from older checkpoints: noise up to the output
    "noise_lr_mul",  # absent from older checkpoints: 1 (the strengths stored as used)
    "log_noise_strength",  # absent from older checkpoints: 0 (linear strengths)
    "detector_noise_sd",  # absent from older checkpoints: 0 (no detector noise)
    "architecture",  # absent from older checkpoints: skip outputs
    "pore_floor",  # absent from older checkpoints: no floor
    "pore_floor_width",
    "pore_phase_grey",  # absent from older checkpoints: one-phase output
    "pore_outline_noise_sigma",  # absent from older checkpoints: no outline field
    "pore_outline_fixed_strength",  # absent when learnt
    "pore_crack_strength",  # absent from older checkpoints: no crack field
    "pore_crack_width",
    "psf_sigma",  # absent from older checkpoints: no blur
    "pore_rim_length",  # absent from older checkpoints: no edge effect
)


def load_stylegan2(path: str | os.PathLike, device: str = "cpu") -> "Generator":
    """The EMA generator of a StyleGAN2 checkpoint, in eval mode; one-line error otherwise."""
    from ..models.stylegan2 import Generator

    payload = read_model_checkpoint(path, "stylegan2", device)
    cfg = payload["model_config"]
    return load_trained_weights(
        Generator(**{k: cfg[k] for k in MODEL_KEYS if k in cfg}), payload["G_ema"], path, device
    )


def latents_from_seeds(
    G: "Generator", seeds: np.ndarray, device: "torch.device | str" = "cpu", noise: bool = True
) -> tuple["torch.Tensor", list["torch.Tensor"]]:
    """z (N, z_dim) and one noise map per layer (N, 1, r, r) — and, drawn after the layers',
    those of G's detector noise and pore outlines where G has them — all from each tile's own
    seed, so a tile is a function of its seed alone and can be regenerated from the table.

    z comes from the CPU generator (the same latent on any machine); the noise maps are drawn
    on ``device`` (fast on GPUs; a GPU's random stream differs from the CPU's)."""
    import torch

    shapes = [layer.noise_const.shape[1:] for layer in (G.conv1, *G.convs)]
    shapes += G.extra_noise_shapes()
    zs, noises = [], [[] for _ in shapes]
    for s in seeds:
        zs.append(torch.randn(G.z_dim, generator=torch.Generator().manual_seed(int(s))))
        if not noise:  # z only (the noise list stays empty)
            continue
        g = torch.Generator(device=device).manual_seed(int(s) + 1)
        for k, shape in enumerate(shapes):
            noises[k].append(torch.randn(shape, generator=g, device=device))
    return torch.stack(zs).to(device), [torch.stack(n) for n in noises] if noise else []


def generate(
    G: "Generator",
    seeds: np.ndarray,
    batch_size: int = 64,
    truncation_psi: float = 1.0,
    noise_mode: str = "seeded",
    show_progress: bool = False,
    noise_seeds: np.ndarray | None = None,
) -> np.ndarray:
    """Images in [0, 1] (N, C, R, R) float32, one per seed, batched and without gradients.

    ``noise_mode``: ``seeded`` (per-pixel noise drawn from the tile's seed: the stochastic
    detail — here, where the pores sit — varies between tiles but is reproducible), ``const``
    (the generator's fixed noise maps) or ``none``. ``noise_seeds`` (seeded mode only, one per
    seed) draws the noise from other seeds than z: one latent with many noise draws shows what
    the noise alone controls.
    """
    seeds = np.asarray(seeds)
    if noise_seeds is not None and len(noise_seeds) != len(seeds):
        raise ValueError(f"{len(noise_seeds)} noise seeds for {len(seeds)} seeds")
    return _synthesise(
        G,
        len(seeds),
        batch_size,
        noise_mode,
        show_progress,
        lambda s, e, dev: _mapped(G, seeds[s:e], truncation_psi, dev),
        noise_seeds if noise_seeds is not None else seeds,
    )


def interpolate_w(
    G: "Generator", seed_a: int, seed_b: int, n: int, noise_mode: str = "const"
) -> np.ndarray:
    """``n`` images along the straight line in W from the latent of ``seed_a`` to that of
    ``seed_b`` (both ends included), (n, C, R, R) in [0, 1]; ``noise_mode`` as in
    :func:`generate` (``seeded`` draws every image's noise from ``seed_a``)."""
    import torch

    def ws(s: int, e: int, dev: "torch.device") -> "torch.Tensor":
        w_ends = _mapped(G, np.array([seed_a, seed_b]), 1.0, dev)
        t = torch.linspace(0, 1, n, device=dev)[:, None]
        return w_ends[0].lerp(w_ends[1], t)[s:e]

    return _synthesise(G, n, n, noise_mode, False, ws, np.full(n, seed_a))


def _mapped(
    G: "Generator", seeds: np.ndarray, truncation_psi: float, dev: "torch.device"
) -> "torch.Tensor":
    """w (N, w_dim) of the seeds' latents."""
    z, _ = latents_from_seeds(G, seeds, dev, noise=False)
    return G.map(z, truncation_psi)


def _synthesise(
    G: "Generator",
    n: int,
    batch_size: int,
    noise_mode: str,
    show_progress: bool,
    w_of: "Callable",
    noise_seeds: np.ndarray,
) -> np.ndarray:
    """Images from ``w_of(start, end, device)`` (N, w_dim) in batches, noise as in
    :func:`generate`; bfloat16 autocast on CUDA."""
    import torch

    dev = next(G.parameters()).device
    out = np.empty((n, G.img_channels, G.resolution, G.resolution), np.float32)
    starts = range(0, n, batch_size)
    if show_progress:
        starts = progress(starts, desc="sampling", total=len(starts))
    with torch.no_grad():
        for s in starts:
            e = min(s + batch_size, n)
            noises = (
                latents_from_seeds(G, noise_seeds[s:e], dev)[1] if noise_mode == "seeded" else None
            )
            with torch.autocast(
                device_type=dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"
            ):
                w = w_of(s, e, dev)
                x = G.synthesis(
                    w[:, None].repeat(1, G.num_ws, 1),
                    "random" if noise_mode == "seeded" else noise_mode,
                    noises,
                )
            out[s:e] = ((x.float() + 1) / 2).clamp(0, 1).cpu().numpy()
    return out
