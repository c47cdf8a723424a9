"""Train StyleGAN2-ADA on a tile stack; load the EMA generator and sample tiles from seeds.

Losses as in the StyleGAN2/ADA papers: non-saturating logistic loss, lazy R1 on reals every
``r1_interval`` steps (γ "auto" = 0.0002·R²/batch), path-length regularisation every
``pl_interval`` steps (weight 2, on half the batch), style mixing, an exponential moving average of
G (half-life ``ema_kimg`` thousand images) used for all sampling, and ADA on everything D sees.
Adam hyper-parameters of regularised networks are rescaled for lazy regularisation.

Runs on one device, or data-parallel under ``torchrun`` (see :mod:`matgen.train.distributed`):
the batch is split over processes, each draws its own tiles and latents from ``seed + rank``, and
only rank 0 logs and writes checkpoints. On CUDA the main losses run under bfloat16 autocast
(``amp``) with channels-last tensors; regularisers stay in float32.

A resume checkpoint (``<model>.resume.pt``) is written atomically every ``checkpoint_kimg``; a
killed run started again continues from it (bit-identical on one CPU process) and it is removed
once the final model is written.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import InputError, TrainingDiverged
from ..models.stylegan2 import check_resolution
from .checkpoint import (load_resume_checkpoint, load_trained_weights, read_model_checkpoint,
                         resume_path_for, save_checkpoint)
from .distributed import (all_reduce_gradients, all_reduce_sum, barrier, init_distributed,
                          shutdown)
from .loop import CSVLogger, ema_update, progress, restore_log, seed_everything

MODEL_KEYS = ("resolution", "z_dim", "w_dim", "n_mapping", "channel_base", "channel_max",
              "img_channels")


def train_stylegan2(tiles_path: str | os.PathLike, model_out: str | os.PathLike,
                    log_out: str | os.PathLike, *, seed: int = 0, total_kimg: float = 25_000,
                    batch_size: int = 32, z_dim: int = 512, w_dim: int = 512, n_mapping: int = 8,
                    channel_base: int = 32768, channel_max: int = 512, lr: float = 0.0025,
                    r1_gamma: float | str = "auto", r1_interval: int = 16, pl_weight: float = 2.0,
                    pl_interval: int = 4, style_mixing: float = 0.9, ema_kimg: float = 10.0,
                    ada_target: float = 0.6, ada_interval: int = 4, ada_kimg: float = 500.0,
                    augmentations: list[str] | None = None, checkpoint_kimg: float = 50.0,
                    log_every: int = 10, device: str = "auto", amp: bool = True,
                    show_progress: bool = True,
                    on_step: Callable[[int, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train on tiles ``(N, C, R, R)`` with values in [0, 1] (the tile stage's ``tiles.npy``).

    Writes ``model_out`` (.pt: model config, EMA generator, G, D, step, ADA p) and a CSV log
    ``log_out`` (step, kimg, loss_d, loss_g, r1, pl_penalty, ada_p, ada_rt, sec_per_kimg).
    ``on_step(step, state)`` is called after every step (tests use it to interrupt a run).
    Returns a summary dict (steps, kimg, final ADA p, seconds).
    """
    import torch
    import torch.nn.functional as F

    from ..data.ada import AUGMENTATIONS, AdaptiveProbability, augment
    from ..data.ingest import load_stack
    from ..models.stylegan2 import Discriminator, Generator

    tiles = load_stack(tiles_path)
    n_tiles, channels, height, width = tiles.shape
    if height != width:
        raise InputError(f"{tiles_path}: tiles are {height} x {width}; StyleGAN2 needs square tiles")
    try:
        check_resolution(height)
    except ValueError:
        raise InputError(f"{tiles_path}: tile size {height} px is not a power of two; StyleGAN2 "
                         f"needs 2^k px tiles (set the tile size, e.g. 64 or 1024)") from None
    info, dev = init_distributed(device)
    if batch_size % info.world_size:
        raise InputError(f"batch_size {batch_size} is not divisible by {info.world_size} processes")
    if n_tiles < batch_size:
        raise InputError(f"{tiles_path}: {n_tiles} tiles, fewer than one batch ({batch_size}); "
                         f"lower batch_size or tile more images")
    ops = tuple(augmentations) if augmentations is not None else AUGMENTATIONS
    if set(ops) - set(AUGMENTATIONS):
        raise InputError(f"augmentations: unknown {sorted(set(ops) - set(AUGMENTATIONS))}; "
                         f"choose from {list(AUGMENTATIONS)}")
    local_batch = batch_size // info.world_size
    gamma = 0.0002 * height ** 2 / batch_size if r1_gamma == "auto" else float(r1_gamma)
    model_config = dict(resolution=height, z_dim=z_dim, w_dim=w_dim, n_mapping=n_mapping,
                        channel_base=channel_base, channel_max=channel_max, img_channels=channels)

    seed_everything(seed)  # identical initial weights on every process
    G = Generator(**model_config).to(dev)
    D = Discriminator(height, channel_base, channel_max, channels).to(dev)
    G_ema = Generator(**model_config).to(dev).eval().requires_grad_(False)
    G_ema.load_state_dict(G.state_dict())
    use_amp = amp and dev.type == "cuda"
    if dev.type == "cuda":
        G, D, G_ema = (m.to(memory_format=torch.channels_last) for m in (G, D, G_ema))

    def adam(params, interval):  # lazy regularisation rescales lr and betas
        c = interval / (interval + 1)
        return torch.optim.Adam(params, lr=lr * c, betas=(0.0, 0.99 ** c), eps=1e-8)

    opt_g, opt_d = adam(G.parameters(), pl_interval), adam(D.parameters(), r1_interval)
    ada = AdaptiveProbability(target=ada_target, interval=ada_interval, kimg=ada_kimg)
    pl_mean = torch.zeros((), device=dev)
    data_rng = np.random.default_rng(seed + 1_000_003 * info.rank)
    total_steps = max(1, math.ceil(total_kimg * 1000 / batch_size))
    ckpt_every = max(1, round(checkpoint_kimg * 1000 / batch_size))
    resume = resume_path_for(model_out)
    start = 0

    state = load_resume_checkpoint(resume, model_config, str(dev), restore_rng=info.is_main)
    if state is not None:
        G.load_state_dict(state["G"])
        D.load_state_dict(state["D"])
        G_ema.load_state_dict(state["G_ema"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        ada.load_state_dict(state["ada"])
        pl_mean.fill_(float(state["pl_mean"]))
        if info.is_main:
            data_rng.bit_generator.state = state["data_rng"]
        else:  # other ranks: a fresh stream per (rank, step); exact replay only on one process
            data_rng = np.random.default_rng([seed, info.rank, state["step"]])
            torch.manual_seed(seed * 7919 + info.rank * 104729 + state["step"])
        start = int(state["step"])
        if info.is_main:
            restore_log(log_out, state.get("log_csv", ""))
            print(f"resuming from {resume} at step {start} of {total_steps}", file=sys.stderr)
    elif info.enabled:
        torch.manual_seed(seed + 1_000_003 * info.rank)
    logger = CSVLogger(log_out, resume_step=start if state is not None else None) \
        if info.is_main else None

    def real_batch() -> torch.Tensor:
        idx = np.sort(data_rng.integers(0, n_tiles, local_batch))
        x = torch.from_numpy(np.asarray(tiles[idx], dtype=np.float32)).to(dev)
        x = x * 2 - 1
        return x.contiguous(memory_format=torch.channels_last) if dev.type == "cuda" else x

    def run_d(images: torch.Tensor) -> torch.Tensor:
        return D(augment(images, ada.p, ops))

    def autocast():
        return torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=use_amp)

    ema_beta = 0.5 ** (batch_size / max(ema_kimg * 1000, 1e-8))
    started = time.time()
    tick_time, tick_images = time.time(), 0
    # running sums of the current log interval travel in the checkpoint, so a resumed run logs
    # the same means as an uninterrupted one
    sums: dict[str, float] = dict(state.get("log_sums", {})) if state is not None else {}
    last_r1 = torch.tensor(state.get("last_r1", 0.0)) if state is not None else torch.zeros(())
    last_pl = torch.tensor(state.get("last_pl", 0.0)) if state is not None else torch.zeros(())
    steps = range(start, total_steps)
    if info.is_main and show_progress:
        steps = progress(steps, desc="StyleGAN2-ADA", total=total_steps, initial=start)
    last_good = start if state is not None else None
    for step in steps:
        # --- D: logistic loss on augmented reals and fakes
        real = real_batch()
        z = torch.randn(local_batch, z_dim, device=dev)
        with torch.no_grad(), autocast():
            fake = G(z, mixing_prob=style_mixing)
        D.requires_grad_(True)
        with autocast():
            logits_fake = run_d(fake.float())
            logits_real = run_d(real)
            loss_d = F.softplus(logits_fake).mean() + F.softplus(-logits_real).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.float().backward()
        all_reduce_gradients(D.parameters(), info)
        opt_d.step()
        sign_sum, count = all_reduce_sum([float(torch.sign(logits_real.detach()).sum()),
                                          float(logits_real.numel())], info, dev)
        ada.accumulate(sign_sum, count)
        # --- D: lazy R1 on reals
        r1 = torch.zeros((), device=dev)
        if step % r1_interval == 0 and gamma > 0:
            real_r = real.detach().requires_grad_(True)
            logits = run_d(real_r)
            (grad,) = torch.autograd.grad(logits.sum(), real_r, create_graph=True)
            r1 = grad.square().sum((1, 2, 3)).mean()
            opt_d.zero_grad(set_to_none=True)
            (r1 * (gamma / 2) * r1_interval + 0 * logits.mean()).backward()
            all_reduce_gradients(D.parameters(), info)
            opt_d.step()
        # --- G: non-saturating loss through the augmentation
        D.requires_grad_(False)
        z = torch.randn(local_batch, z_dim, device=dev)
        with autocast():
            loss_g = F.softplus(-run_d(G(z, mixing_prob=style_mixing).float())).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.float().backward()
        all_reduce_gradients(G.parameters(), info)
        opt_g.step()
        # --- G: lazy path-length regularisation on half the batch
        pl_penalty = torch.zeros((), device=dev)
        if step % pl_interval == 0 and pl_weight > 0:
            z = torch.randn(max(1, local_batch // 2), z_dim, device=dev)
            fake, ws = G(z, mixing_prob=style_mixing, return_ws=True)
            noise = torch.randn_like(fake) / math.sqrt(height * width)
            (grad,) = torch.autograd.grad((fake * noise).sum(), ws, create_graph=True)
            lengths = grad.square().sum(2).mean(1).sqrt()
            mean_len = all_reduce_sum([float(lengths.detach().mean())], info, dev)[0] / info.world_size
            pl_mean.lerp_(torch.tensor(mean_len, device=dev), 0.01)
            pl_penalty = (lengths - pl_mean).square().mean()
            opt_g.zero_grad(set_to_none=True)
            (pl_penalty * pl_weight * pl_interval + 0 * fake[0, 0, 0, 0]).backward()
            all_reduce_gradients(G.parameters(), info)
            opt_g.step()
        ema_update(G_ema, G, ema_beta)
        ada.update(step, batch_size)

        values = {"loss_d": loss_d.detach(), "loss_g": loss_g.detach()}
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v
        if step % r1_interval == 0:  # regularisers are logged as their latest value
            last_r1 = r1.detach()
        if step % pl_interval == 0:
            last_pl = pl_penalty.detach()
        tick_images += batch_size
        done = step + 1
        if done % log_every == 0 or done == total_steps or done % ckpt_every == 0:
            bad = [k for k in ("loss_d", "loss_g") if not math.isfinite(float(values[k]))]
            if bad or not all(torch.isfinite(p).all() for p in G.parameters()):
                where = f"last good checkpoint {resume} (step {last_good})" if last_good is not None \
                    else "no checkpoint written yet"
                raise TrainingDiverged(f"{model_out}: {(bad or ['G weights'])[0]} is not finite at "
                                       f"step {done} (kimg {done * batch_size / 1000:.2f}); {where}")
            if logger is not None and done % log_every == 0:
                means = {k: float(v) / log_every for k, v in sums.items()}
                now = time.time()
                logger.log(step=done, kimg=round(done * batch_size / 1000, 4),
                           loss_d=means["loss_d"], loss_g=means["loss_g"], r1=float(last_r1),
                           pl_penalty=float(last_pl), pl_mean=float(pl_mean), ada_p=ada.p,
                           ada_rt=ada.rt, sec_per_kimg=(now - tick_time) / (tick_images / 1000))
                tick_time, tick_images = now, 0
            if done % log_every == 0:
                sums = {}
        if done % ckpt_every == 0 and done < total_steps:
            if info.is_main:
                save_checkpoint(resume, step=done, model_config=model_config, G=G.state_dict(),
                                D=D.state_dict(), G_ema=G_ema.state_dict(),
                                opt_g=opt_g.state_dict(), opt_d=opt_d.state_dict(),
                                ada=ada.state_dict(), pl_mean=float(pl_mean),
                                data_rng=data_rng.bit_generator.state,
                                log_sums={k: float(v) for k, v in sums.items()},
                                last_r1=float(last_r1), last_pl=float(last_pl),
                                log_csv=Path(log_out).read_text() if Path(log_out).exists() else "")
            last_good = done
            barrier(info)
        if on_step is not None:
            on_step(done, {"G": G, "D": D, "ada": ada})

    summary = {"steps": total_steps, "kimg": total_steps * batch_size / 1000, "ada_p": ada.p,
               "r1_gamma": gamma, "processes": info.world_size, "seconds": time.time() - started}
    if info.is_main:
        save_checkpoint(model_out, step=total_steps, model_config=model_config, include_rng=False,
                        G_ema=G_ema.state_dict(), G=G.state_dict(), D=D.state_dict(),
                        family="stylegan2", summary=summary)
        resume.unlink(missing_ok=True)
    barrier(info)
    shutdown(info)
    return summary


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
