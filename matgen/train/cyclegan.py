"""Train an unpaired CycleGAN from a source domain L to a target domain H.

G_LH maps L tiles (e.g. 16² or 64² micro-CT; or simulated STEM) to H tiles ``scale`` times larger
(SEM; or experimental STEM at scale 1), G_HL back. ``generator='unet'`` (scale 1 only) uses U-Net
generators; ``fourier=True`` adds a discriminator on the Fourier log-amplitude per domain
(weighted ``lambda_fourier`` in the generator loss); ``input_noise`` adds N(0, σ²) noise (σ in
the networks' [-1, 1] units) to every G_LH input, a noise source the deterministic simulation
lacks.
Losses: least-squares GAN for both discriminators (PatchGAN, fed from a 50-image pool), cycle
consistency L1 weighted ``lambda_cycle`` (10) both ways, and — only where both domains share a
pixel size (scale 1) — the identity loss weighted ``lambda_identity`` × ``lambda_cycle``. Adam
(2e-4, β1 0.5) with the learning rate constant for the first half and decayed linearly to zero
over the second. Both domains get random D4 transforms (the micrographs have no preferred
orientation). bfloat16 autocast on CUDA; resumable from ``<model>.resume.pt`` like StyleGAN2.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import InputError, TrainingDiverged
from .checkpoint import (load_resume_checkpoint, load_trained_weights, read_model_checkpoint,
                         resume_path_for, save_checkpoint)
from .loop import CSVLogger, progress, restore_log, seed_everything, select_device

def build_cyclegan(cfg: dict[str, Any]) -> dict[str, "torch.nn.Module"]:
    """The four networks of a CycleGAN from its model config."""
    from ..models.cyclegan import (FourierDiscriminator, PatchDiscriminator, ResnetGenerator,
                                   UnetGenerator)

    if cfg.get("generator", "resnet") == "unet":
        depth = cfg["n_downsampling"]
        nets = {"G_LH": UnetGenerator(cfg["in_ch"], cfg["out_ch"], cfg["ngf"], depth),
                "G_HL": UnetGenerator(cfg["out_ch"], cfg["in_ch"], cfg["ngf"], depth)}
    else:
        g = dict(ngf=cfg["ngf"], n_blocks=cfg["n_blocks"], n_downsampling=cfg["n_downsampling"])
        nets = {"G_LH": ResnetGenerator(cfg["in_ch"], cfg["out_ch"], scale=cfg["scale"], **g),
                "G_HL": ResnetGenerator(cfg["out_ch"], cfg["in_ch"], scale=1 / cfg["scale"], **g)}
    nets["D_H"] = PatchDiscriminator(cfg["out_ch"], cfg["ndf"], cfg["n_layers_high"])
    nets["D_L"] = PatchDiscriminator(cfg["in_ch"], cfg["ndf"], cfg["n_layers_low"])
    if cfg.get("fourier", False):
        nets["F_H"] = FourierDiscriminator(cfg["out_ch"], cfg["ndf"], cfg["n_layers_high"])
        nets["F_L"] = FourierDiscriminator(cfg["in_ch"], cfg["ndf"], cfg["n_layers_low"])
    return nets


def train_cyclegan(low_tiles_path: str | os.PathLike, high_tiles_path: str | os.PathLike,
                   model_out: str | os.PathLike, log_out: str | os.PathLike, *, seed: int = 0,
                   steps: int = 200_000, batch_size: int = 1, ngf: int = 64, n_blocks: int = 9,
                   n_downsampling: int = 2, ndf: int = 64, n_layers: int = 3, lr: float = 2e-4,
                   lambda_cycle: float = 10.0, lambda_identity: float = 0.5, pool_size: int = 50,
                   generator: str = "resnet", fourier: bool = False, lambda_fourier: float = 1.0,
                   input_noise: float = 0.0,
                   checkpoint_every: int = 5000, log_every: int = 100, device: str = "auto",
                   amp: bool = True, show_progress: bool = True,
                   on_step: Callable[[int, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train G_LH / G_HL on unpaired tile stacks (N, C, h, h) and (M, C, H, H), values in [0, 1].

    ``H / h`` must be a power of two (the generators' scale). Discriminator depth is ``n_layers``
    or less where a domain's tiles are too small for it. Writes ``model_out`` (.pt: model config,
    the networks) and a CSV log (step, loss_g, loss_d, gan_h, gan_l, cycle, identity, fourier,
    lr, sec_per_step).
    """
    import torch
    import torch.nn.functional as F

    from ..data.augment import d4_transform
    from ..data.ingest import load_stack
    from ..models.cyclegan import ImagePool, lsgan_loss, patch_layers_for

    low, high = load_stack(low_tiles_path), load_stack(high_tiles_path)
    for path, tiles in ((low_tiles_path, low), (high_tiles_path, high)):
        if len(tiles) < batch_size:
            raise InputError(f"{path}: {len(tiles)} tiles, fewer than one batch ({batch_size})")
        if tiles.shape[2] != tiles.shape[3]:
            raise InputError(f"{path}: tiles are {tiles.shape[2]} x {tiles.shape[3]}; need squares")
    ratio = high.shape[-1] / low.shape[-1]
    if ratio < 1 or abs(math.log2(ratio) - round(math.log2(ratio))) > 1e-9:
        raise InputError(f"{high_tiles_path}: tile size {high.shape[-1]} is not a power-of-two "
                         f"multiple of the {low.shape[-1]} px tiles of {low_tiles_path}")
    scale = int(round(ratio))
    if generator not in ("resnet", "unet"):
        raise InputError(f"unknown CycleGAN generator {generator!r} (use 'resnet' or 'unet')")
    if generator == "unet" and scale != 1:
        raise InputError(f"{high_tiles_path}: U-Net generators translate at one pixel size, but "
                         f"the tiles differ by a factor {scale}")
    cfg = dict(generator=generator, fourier=bool(fourier), in_ch=int(low.shape[1]), out_ch=int(high.shape[1]), ngf=ngf, n_blocks=n_blocks,
               n_downsampling=min(n_downsampling, int(math.log2(low.shape[-1])) - 2),
               scale=scale, ndf=ndf, n_layers_low=patch_layers_for(low.shape[-1], n_layers),
               n_layers_high=patch_layers_for(high.shape[-1], n_layers))
    dev = select_device(device)
    seed_everything(seed)
    nets = {k: v.to(dev) for k, v in build_cyclegan(cfg).items()}
    G_LH_net, G_HL = nets["G_LH"], nets["G_HL"]
    discriminators = {k: v for k, v in nets.items() if not k.startswith("G_")}
    opt_g = torch.optim.Adam([*G_LH_net.parameters(), *G_HL.parameters()], lr=lr,
                             betas=(0.5, 0.999))
    opt_d = torch.optim.Adam([p for d in discriminators.values() for p in d.parameters()], lr=lr,
                             betas=(0.5, 0.999))

    def G_LH(x: torch.Tensor) -> torch.Tensor:
        return G_LH_net(x + input_noise * torch.randn_like(x) if input_noise > 0 else x)

    def adversarial(domain: str, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Generator's LSGAN terms for one domain: image discriminator, Fourier one (or 0)."""
        image = lsgan_loss(nets[f"D_{domain}"](fake).float(), True)
        if not fourier:
            return image, torch.zeros((), device=dev)
        return image, lsgan_loss(nets[f"F_{domain}"](fake).float(), True)

    def discriminator_loss(domain: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        names = [f"D_{domain}"] + ([f"F_{domain}"] if fourier else [])
        return sum(0.5 * (lsgan_loss(nets[n](real).float(), True) +
                          lsgan_loss(nets[n](fake).float(), False)) for n in names)
    decay_start = steps // 2

    def lr_at(step: int) -> float:  # constant, then linear to zero
        return lr * min(1.0, max(0.0, (steps - step) / max(steps - decay_start, 1)))

    pools = {"H": ImagePool(pool_size, random.Random(seed)),
             "L": ImagePool(pool_size, random.Random(seed + 1))}
    data_rng = np.random.default_rng(seed + 1)
    use_identity = scale == 1 and lambda_identity > 0 and cfg["in_ch"] == cfg["out_ch"]
    resume = resume_path_for(model_out)
    start = 0
    state = load_resume_checkpoint(resume, cfg, str(dev))
    if state is not None:
        for k, net in nets.items():
            net.load_state_dict(state[k])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        for k, pool in pools.items():
            pool.load_state_dict(state[f"pool_{k}"], dev)
        data_rng.bit_generator.state = state["data_rng"]
        start = int(state["step"])
        restore_log(log_out, state.get("log_csv", ""))
        print(f"resuming from {resume} at step {start} of {steps}", file=sys.stderr)
    logger = CSVLogger(log_out, resume_step=start if state is not None else None)

    def batch(tiles: np.ndarray) -> torch.Tensor:
        idx = np.sort(data_rng.integers(0, len(tiles), batch_size))
        x = np.asarray(tiles[idx], dtype=np.float32) * 2 - 1
        x = np.stack([d4_transform(t, int(k)) for t, k in zip(x, data_rng.integers(0, 8, len(x)))])
        return torch.from_numpy(np.ascontiguousarray(x)).to(dev)

    autocast = lambda: torch.autocast(device_type=dev.type, dtype=torch.bfloat16,  # noqa: E731
                                      enabled=amp and dev.type == "cuda")
    # running sums of the current log interval travel in the checkpoint, so a resumed run logs
    # the same means as an uninterrupted one
    sums = dict(state.get("log_sums", {})) if state is not None else {}
    started, last_good = time.time(), (start if state is not None else None)
    it = range(start, steps)
    if show_progress:
        it = progress(it, desc="CycleGAN", total=steps, initial=start)
    for step in it:
        for group in (*opt_g.param_groups, *opt_d.param_groups):
            group["lr"] = lr_at(step)
        real_l, real_h = batch(low), batch(high)
        # --- generators
        for d in discriminators.values():
            d.requires_grad_(False)
        with autocast():
            fake_h = G_LH(real_l)
            fake_l = G_HL(real_h)
            gan_h, fourier_h = adversarial("H", fake_h)
            gan_l, fourier_l = adversarial("L", fake_l)
            fourier_gan = fourier_h + fourier_l
            cycle = F.l1_loss(G_HL(fake_h).float(), real_l) + F.l1_loss(G_LH(fake_l).float(), real_h)
            identity = torch.zeros((), device=dev)
            if use_identity:
                identity = F.l1_loss(G_LH(real_h).float(), real_h) + \
                    F.l1_loss(G_HL(real_l).float(), real_l)
            loss_g = (gan_h + gan_l + lambda_fourier * fourier_gan + lambda_cycle * cycle +
                      lambda_cycle * lambda_identity * identity)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        # --- discriminators, on pooled fakes
        for d in discriminators.values():
            d.requires_grad_(True)
        with autocast():
            loss_d_h = discriminator_loss("H", real_h, pools["H"].query(fake_h.float()))
            loss_d_l = discriminator_loss("L", real_l, pools["L"].query(fake_l.float()))
        opt_d.zero_grad(set_to_none=True)
        (loss_d_h + loss_d_l).backward()
        opt_d.step()

        values = {"loss_g": loss_g, "loss_d": loss_d_h + loss_d_l, "gan_h": gan_h, "gan_l": gan_l,
                  "cycle": cycle, "identity": identity, "fourier": fourier_gan}
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v.detach()
        done = step + 1
        if done % log_every == 0 or done % checkpoint_every == 0 or done == steps:
            bad = [k for k in ("loss_g", "loss_d") if not math.isfinite(float(values[k].detach()))]
            if bad:
                where = f"last good checkpoint {resume} (step {last_good})" if last_good else \
                    "no checkpoint written yet"
                raise TrainingDiverged(f"{model_out}: {bad[0]} is not finite at step {done}; {where}")
        if done % log_every == 0:
            logger.log(step=done, **{k: float(v) / log_every for k, v in sums.items()},
                       lr=lr_at(step), sec_per_step=(time.time() - started) / (done - start))
            sums = {}
        if done % checkpoint_every == 0 and done < steps:
            save_checkpoint(resume, step=done, model_config=cfg, opt_g=opt_g.state_dict(),
                            opt_d=opt_d.state_dict(), data_rng=data_rng.bit_generator.state,
                            pool_H=pools["H"].state_dict(), pool_L=pools["L"].state_dict(),
                            log_sums={k: float(v) for k, v in sums.items()},
                            log_csv=Path(log_out).read_text() if Path(log_out).exists() else "",
                            **{k: n.state_dict() for k, n in nets.items()})
            last_good = done
        if on_step is not None:
            on_step(done, nets)
    summary = {"steps": steps, "scale": scale, "seconds": time.time() - started}
    save_checkpoint(model_out, step=steps, model_config=cfg, include_rng=False, family="cyclegan",
                    summary=summary, tile_size=int(low.shape[-1]), **{k: n.state_dict() for k, n in nets.items()})
    resume.unlink(missing_ok=True)
    return summary


def load_cyclegan_generator(path: str | os.PathLike, direction: str = "G_LH",
                            device: str = "cpu", return_tile_size: bool = False) -> Any:
    """One generator (``G_LH`` or ``G_HL``) of a CycleGAN checkpoint, in eval mode; with
    ``return_tile_size`` also the size of the tiles it was trained on (its input side)."""
    payload = read_model_checkpoint(path, "cyclegan", device)
    net = load_trained_weights(build_cyclegan(payload["model_config"])[direction],
                               payload[direction], path, device, f"{direction} weights")
    if not return_tile_size:
        return net
    low = int(payload.get("tile_size", 0))
    return net, (low if direction == "G_LH" else int(low * payload["model_config"]["scale"]))


def translate(generator: "torch.nn.Module", tiles: np.ndarray, batch_size: int = 32,
              show_progress: bool = False, input_noise: float = 0.0, seed: int = 0) -> np.ndarray:
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
            x = torch.from_numpy(np.array(tiles[s:s + batch_size], dtype=np.float32)).to(dev)
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16,
                                enabled=dev.type == "cuda"):
                x = x * 2 - 1
                if input_noise > 0:
                    gen = torch.Generator().manual_seed(seed + s)
                    x = x + input_noise * torch.randn(x.shape, generator=gen).to(dev)
                y = generator(x)
            out.append(((y.float() + 1) / 2).clamp(0, 1).cpu().numpy())
    return np.concatenate(out) if out else np.empty((0,) + tiles.shape[1:], np.float32)
