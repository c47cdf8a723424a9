"""Train an unpaired CycleGAN from a source domain L to a target domain H.

G_LH maps L tiles (e.g. 16² or 64² micro-CT; or simulated STEM) to H tiles ``scale`` times larger
(SEM; or experimental STEM at scale 1), G_HL back. ``generator='unet'`` (scale 1 only) uses U-Net
generators; ``fourier=True`` adds a discriminator on the Fourier log-amplitude per domain
(weighted ``lambda_fourier`` in the generator loss); ``input_noise`` adds N(0, σ²) noise (σ in
the networks' [-1, 1] units) to every G_LH input, a noise source the deterministic simulation
lacks. ``lambda_forward`` > 0 adds the low-resolution instrument's forward model as a loss on
G_LH: G_LH(x), blurred by the point-spread function (Gaussian, ``psf_sigma`` low-resolution
pixels) and averaged over ``scale`` x ``scale`` blocks, must give back x (L1 after a grey-level
fit, :func:`matgen.train.losses.forward_model_loss`) — without it nothing ties the translation
to this tile's structure but the cycle, which G_HL can satisfy by hiding it.
Losses: least-squares GAN for both discriminators (PatchGAN, fed from a 50-image pool), cycle
consistency L1 weighted ``lambda_cycle`` (10) both ways, and — only where both domains share a
pixel size (scale 1) — the identity loss weighted ``lambda_identity`` × ``lambda_cycle``. Adam
(2e-4, β1 0.5) with the learning rate constant for the first half and decayed linearly to zero
over the second. Both domains get random D4 transforms (the micrographs have no preferred
orientation). ``amp``: bfloat16 autocast on CUDA and on CPUs where it pays
(:func:`matgen.util.bfloat16_autocast`); resumable from ``<model>.resume.pt`` like StyleGAN2.
Applying a trained generator: :mod:`matgen.inference.cyclegan`.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..util import bfloat16_autocast, seed_everything, select_device
from .loop import TrainingRun
from .losses import (
    cycle_loss,
    forward_model_loss,
    grey_histogram_loss,
    identity_loss,
    lsgan_loss,
    pore_split_level,
)

if TYPE_CHECKING:  # torch is imported where it is used: the CLI starts fast
    import torch


def _check_tiles(
    low: np.ndarray,
    high: np.ndarray,
    low_path: Any,
    high_path: Any,
    batch_size: int,
    generator: str,
) -> int:
    """The scale factor between the two domains' tiles; one-line errors for tiles that do
    not fit."""
    for path, tiles in ((low_path, low), (high_path, high)):
        if len(tiles) < batch_size:
            raise InputError(f"{path}: {len(tiles)} tiles, fewer than one batch ({batch_size})")
        if tiles.shape[2] != tiles.shape[3]:
            raise InputError(f"{path}: tiles are {tiles.shape[2]} x {tiles.shape[3]}; need squares")
    ratio = high.shape[-1] / low.shape[-1]
    if ratio < 1 or abs(math.log2(ratio) - round(math.log2(ratio))) > 1e-9:
        raise InputError(
            f"{high_path}: tile size {high.shape[-1]} is not a power-of-two "
            f"multiple of the {low.shape[-1]} px tiles of {low_path}"
        )
    scale = int(round(ratio))
    if generator not in ("resnet", "unet"):
        raise InputError(f"unknown CycleGAN generator {generator!r} (use 'resnet' or 'unet')")
    if generator == "unet" and scale != 1:
        raise InputError(
            f"{high_path}: U-Net generators translate at one pixel size, but "
            f"the tiles differ by a factor {scale}"
        )
    return scale


def _d4_batch(
    tiles: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    dev: Any,
    channels_last: bool = False,
) -> "torch.Tensor":
    """A random batch of tiles in [-1, 1], each under a random D4 transform (channels-last
    strides where ``channels_last``)."""
    import torch

    from ..data.augment import d4_transform

    idx = np.sort(rng.integers(0, len(tiles), batch_size))
    x = np.asarray(tiles[idx], dtype=np.float32) * 2 - 1
    x = np.stack([d4_transform(t, int(k)) for t, k in zip(x, rng.integers(0, 8, len(x)))])
    x = torch.from_numpy(np.ascontiguousarray(x)).to(dev)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _forward_levels(
    levels: Sequence[float] | None, forward_phase: bool
) -> tuple[float, float] | None:
    """The micro-CT's grey levels of pure pore and pure solid ([0, 1]) in the networks' [-1, 1]
    units; they calibrate the forward model's view of solid fractions, so they need
    ``forward_phase``."""
    if levels is None:
        return None
    if not forward_phase or len(levels) != 2 or not levels[0] < levels[1]:
        raise InputError(
            f"forward_levels {list(levels)}: give [pore, solid] grey levels, pore < solid, "
            "with forward_phase on"
        )
    return (2 * float(levels[0]) - 1, 2 * float(levels[1]) - 1)


def _check_forward_factor(factor: int, scale: int, high_path: str) -> None:
    if factor and factor != scale:
        raise InputError(
            f"{high_path}: forward_factor {factor} but the tiles differ by a factor {scale}"
        )


def _union_of_stacks(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    later_tiles: int | None = None,
) -> tuple[np.ndarray, str]:
    """One or several tile stacks of one shape as one array, and their paths for messages;
    ``later_tiles``: of every stack after the first, only its first that many tiles."""
    from ..data.ingest import load_stack

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    stacks = [load_stack(p) for p in paths]
    if later_tiles is not None:
        if later_tiles < 1:
            raise InputError(f"synthetic_tiles must be at least 1, got {later_tiles}")
        stacks[1:] = [tiles[:later_tiles] for tiles in stacks[1:]]
    for path, tiles in zip(paths[1:], stacks[1:]):
        if tiles.shape[1:] != stacks[0].shape[1:]:
            raise InputError(
                f"{path}: tiles of shape {tiles.shape[1:]}, but {paths[0]} has "
                f"{stacks[0].shape[1:]}"
            )
    union = stacks[0] if len(stacks) == 1 else np.concatenate(stacks)
    return union, ", ".join(str(p) for p in paths)


@dataclass
class CycleGANStep:
    """One CycleGAN step: both generators against their discriminators (image PatchGANs, and
    Fourier ones where configured) with cycle and identity losses, then the discriminators on
    pooled fakes."""

    nets: dict[str, Any]
    opt_g: Any
    opt_d: Any
    pools: dict[str, Any]
    dev: Any
    fourier: bool
    input_noise: float
    lambda_cycle: float
    lambda_identity: float
    lambda_fourier: float
    use_identity: bool
    use_amp: bool
    lambda_forward: float = 0.0
    forward_factor: int = 1
    psf_sigma: float = 0.0
    pore_level: float | None = None
    forward_pyramid: bool = False
    forward_levels: tuple[float, float] | None = None
    lambda_grey_histogram: float = 0.0
    histogram_split: float | None = None
    scan_jitter_px: float = 0.0
    scan_jitter_correlation: float = 0.5

    def autocast(self) -> Any:
        import torch

        return torch.autocast(device_type=self.dev.type, dtype=torch.bfloat16, enabled=self.use_amp)

    def G_LH(self, x: "torch.Tensor") -> "torch.Tensor":
        """L → H, with the N(0, σ²) input noise the simulation lacks."""
        import torch

        noisy = x + self.input_noise * torch.randn_like(x) if self.input_noise > 0 else x
        return self.nets["G_LH"](noisy)

    def G_HL(self, x: "torch.Tensor") -> "torch.Tensor":
        return self.nets["G_HL"](x)

    def observed(self, fake_h: "torch.Tensor") -> "torch.Tensor":
        """G_LH's output as the H discriminators see it: with the scan-row jitter of the target
        microscope where configured (kept out of the cycle, which cannot undo random shifts)."""
        from ..models.cyclegan import scan_row_jitter

        if self.scan_jitter_px <= 0:
            return fake_h
        return scan_row_jitter(fake_h, self.scan_jitter_px, self.scan_jitter_correlation)

    def critics(self, domain: str) -> list[str]:
        return [f"D_{domain}"] + ([f"F_{domain}"] if self.fourier else [])

    def adversarial(self, domain: str, fake: "torch.Tensor") -> tuple["torch.Tensor", ...]:
        """Generator's LSGAN terms for one domain: image discriminator, Fourier one (or 0)."""
        import torch

        image = lsgan_loss(self.nets[f"D_{domain}"](fake).float(), True)
        if not self.fourier:
            return image, torch.zeros((), device=self.dev)
        return image, lsgan_loss(self.nets[f"F_{domain}"](fake).float(), True)

    def discriminator_loss(
        self, domain: str, real: "torch.Tensor", fake: "torch.Tensor"
    ) -> "torch.Tensor":
        return sum(
            0.5
            * (
                lsgan_loss(self.nets[n](real).float(), True)
                + lsgan_loss(self.nets[n](fake).float(), False)
            )
            for n in self.critics(domain)
        )

    def __call__(self, real_l: "torch.Tensor", real_h: "torch.Tensor") -> dict[str, Any]:
        import torch

        critics = [self.nets[n] for d in ("H", "L") for n in self.critics(d)]
        for d in critics:
            d.requires_grad_(False)
        with self.autocast():
            fake_h, fake_l = self.G_LH(real_l), self.G_HL(real_h)
            seen_h = self.observed(fake_h)
            gan_h, fourier_h = self.adversarial("H", seen_h)
            gan_l, fourier_l = self.adversarial("L", fake_l)
            fourier_gan = fourier_h + fourier_l
            cycle = cycle_loss(self.G_HL(fake_h), real_l) + cycle_loss(self.G_LH(fake_l), real_h)
            identity = torch.zeros((), device=self.dev)
            if self.use_identity:
                identity = identity_loss(self.G_LH(real_h), real_h) + identity_loss(
                    self.G_HL(real_l), real_l
                )
            forward = torch.zeros((), device=self.dev)
            if self.lambda_forward > 0:
                forward = forward_model_loss(
                    fake_h, real_l, self.forward_factor, self.psf_sigma, self.pore_level,
                    pyramid=self.forward_pyramid, levels=self.forward_levels,
                )  # fmt: skip
            histogram = torch.zeros((), device=self.dev)
            if self.lambda_grey_histogram > 0:
                histogram = grey_histogram_loss(fake_h, real_h, self.histogram_split)
            loss_g = (
                self.lambda_forward * forward
                + self.lambda_grey_histogram * histogram
                + gan_h
                + gan_l
                + self.lambda_fourier * fourier_gan
                + self.lambda_cycle * cycle
                + self.lambda_cycle * self.lambda_identity * identity
            )
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        for d in critics:
            d.requires_grad_(True)
        with self.autocast():
            loss_d = self.discriminator_loss(
                "H", real_h, self.pools["H"].query(seen_h.float())
            ) + self.discriminator_loss("L", real_l, self.pools["L"].query(fake_l.float()))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        return {
            "loss_g": loss_g,
            "loss_d": loss_d,
            "gan_h": gan_h,
            "gan_l": gan_l,
            "cycle": cycle,
            "identity": identity,
            "fourier": fourier_gan,
            "forward": forward,
            "grey_histogram": histogram,
        }


def _model_config(
    generator: str,
    fourier: bool,
    low_shape: tuple[int, ...],
    high_shape: tuple[int, ...],
    ngf: int,
    n_blocks: int,
    scale: int,
    ndf: int,
    n_downsampling: int,
    n_layers: int,
    scan_jitter: tuple[float, float],
) -> dict[str, Any]:
    """The checkpoint's model config: networks sized to the tiles (no deeper than the small
    tiles allow) and, where on, the scan-row jitter (rms px, lag-1 correlation)."""
    from ..models.cyclegan import patch_layers_for

    cfg = dict(generator=generator, fourier=fourier, in_ch=int(low_shape[1]),
               out_ch=int(high_shape[1]), ngf=ngf, n_blocks=n_blocks, scale=scale, ndf=ndf,
               n_downsampling=min(n_downsampling, int(math.log2(low_shape[-1])) - 2),
               n_layers_low=patch_layers_for(low_shape[-1], n_layers),
               n_layers_high=patch_layers_for(high_shape[-1], n_layers))  # fmt: skip
    if scan_jitter[0] > 0:  # only then: older checkpoints keep resuming
        cfg["scan_jitter"] = [float(v) for v in scan_jitter]
    return cfg


def _training_run(
    model_out: str | os.PathLike,
    log_out: str | os.PathLike,
    steps: int,
    cfg: dict[str, Any],
    step_fn: CycleGANStep,
    data_rng: np.random.Generator,
    **kwargs: Any,
) -> TrainingRun:
    """The checkpointed run of a CycleGAN: networks, optimisers, image pools and the data
    sampler's state (restored here when it resumes)."""
    run = TrainingRun(
        model_out,
        log_out,
        total=steps,
        model_config=cfg,
        modules=step_fn.nets,
        states={
            "opt_g": step_fn.opt_g,
            "opt_d": step_fn.opt_d,
            "pool_H": step_fn.pools["H"],
            "pool_L": step_fn.pools["L"],
        },
        device=step_fn.dev,
        desc="CycleGAN",
        extra_state=lambda: {"data_rng": data_rng.bit_generator.state},
        **kwargs,
    )
    if run.resumed is not None:
        data_rng.bit_generator.state = run.resumed["data_rng"]
    return run


def train_cyclegan(
    low_tiles_path: str | os.PathLike,
    high_tiles_path: str | os.PathLike | Sequence[str | os.PathLike],
    model_out: str | os.PathLike,
    log_out: str | os.PathLike,
    *,
    seed: int = 0,
    steps: int = 200_000,
    batch_size: int = 1,
    ngf: int = 64,
    n_blocks: int = 9,
    n_downsampling: int = 2,
    ndf: int = 64,
    n_layers: int = 3,
    lr: float = 2e-4,
    lambda_cycle: float = 10.0,
    lambda_identity: float = 0.5,
    pool_size: int = 50,
    generator: str = "resnet",
    fourier: bool = False,
    lambda_fourier: float = 1.0,
    input_noise: float = 0.0,
    lambda_forward: float = 0.0,
    psf_sigma: float = 0.7,
    forward_factor: int = 0,
    forward_phase: bool = False,
    forward_pyramid: bool = False,
    forward_levels: Sequence[float] | None = None,
    lambda_grey_histogram: float = 0.0,
    grey_histogram_per_phase: bool = False,
    scan_jitter_px: float = 0.0,
    scan_jitter_correlation: float = 0.5,
    synthetic_tiles: int | None = None,
    checkpoint_every: int = 5000,
    log_every: int = 100,
    device: str = "auto",
    amp: bool = True,
    channels_last: bool = False,
    show_progress: bool = True,
    on_step: Callable[[int, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train G_LH / G_HL on unpaired tile stacks (N, C, h, h) and (M, C, H, H), values in [0, 1].

    ``high_tiles_path`` may name several stacks (e.g. real and StyleGAN2 SEM tiles): H is their
    union, with only the first ``synthetic_tiles`` tiles of each stack after the first (None:
    all; the comparison may sample more tiles than the CycleGAN should see). ``H / h`` must be a
    power of two (the generators' scale). Discriminator depth is ``n_layers`` or less where a
    domain's tiles are too small for it. ``forward_factor``: the scale the forward model assumes
    (0 = the tiles' ratio, else equal to it); ``forward_phase``: it sees G_LH's output softly
    segmented at the target tiles' Otsu level, not grey levels.
    ``forward_pyramid``: it also compares block means, down to one per tile (the tiles' porosity).
    ``forward_levels``: [pore, solid] grey levels of the low-resolution instrument, which then
    reads solid fractions on an absolute scale (else one gain and offset per batch).
    ``grey_histogram_per_phase``: the grey-level term matches pores and solid separately at that
    level, leaving each batch's pore fraction to the input (:func:`grey_histogram_loss`).
    ``scan_jitter_px`` > 0: the H critics see G_LH's output with that rms (px) of scan-row
    jitter, lag-1 ``scan_jitter_correlation`` (:meth:`CycleGANStep.observed`; 0: the paper's).
    ``channels_last``: channels-last networks and batches (a porous step 1.2x faster on CPU).
    Writes ``model_out`` (.pt: model config, the networks) and a CSV log (step, loss_g, loss_d,
    gan_h, gan_l, cycle, identity, fourier, forward, grey_histogram, lr, sec_per_step).
    """
    import torch

    from ..data.ingest import load_stack
    from ..models.cyclegan import ImagePool, build_cyclegan

    low = load_stack(low_tiles_path)
    high, high_tiles_path = _union_of_stacks(high_tiles_path, synthetic_tiles)
    scale = _check_tiles(low, high, low_tiles_path, high_tiles_path, batch_size, generator)
    _check_forward_factor(forward_factor if lambda_forward > 0 else 0, scale, high_tiles_path)
    cfg = _model_config(
        generator, bool(fourier), low.shape, high.shape, ngf, n_blocks, scale, ndf,
        n_downsampling, n_layers, (scan_jitter_px, scan_jitter_correlation),
    )  # fmt: skip
    dev = select_device(device)
    seed_everything(seed)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    nets = {k: v.to(dev, memory_format=layout) for k, v in build_cyclegan(cfg).items()}
    generators = [*nets["G_LH"].parameters(), *nets["G_HL"].parameters()]
    critics = [p for k, d in nets.items() if not k.startswith("G_") for p in d.parameters()]
    pools = {d: ImagePool(pool_size, random.Random(seed + i), dev) for i, d in enumerate("HL")}
    level = pore_split_level(high) if forward_phase or grey_histogram_per_phase else None
    step_fn = CycleGANStep(
        nets, torch.optim.Adam(generators, lr=lr, betas=(0.5, 0.999)),
        torch.optim.Adam(critics, lr=lr, betas=(0.5, 0.999)), pools, dev, bool(fourier),
        input_noise, lambda_cycle, lambda_identity, lambda_fourier,
        scale == 1 and lambda_identity > 0 and cfg["in_ch"] == cfg["out_ch"],
        bfloat16_autocast(dev, amp), lambda_forward, scale, psf_sigma,
        level if forward_phase else None, forward_pyramid,
        _forward_levels(forward_levels, forward_phase), lambda_grey_histogram,
        level if grey_histogram_per_phase else None, scan_jitter_px, scan_jitter_correlation,
    )  # fmt: skip
    data_rng = np.random.default_rng(seed + 1)
    run = _training_run(
        model_out, log_out, steps, cfg, step_fn, data_rng,
        log_every=log_every, checkpoint_every=checkpoint_every, show_progress=show_progress,
    )  # fmt: skip

    def lr_at(step: int) -> float:  # constant for the first half, then linear to zero
        return lr * min(1.0, max(0.0, (steps - step) / max(steps - steps // 2, 1)))

    def log_row(means: dict[str, float]) -> dict[str, Any]:
        return {
            **means,
            "lr": lr_at(done - 1),
            "sec_per_step": (time.time() - run.started) / (done - run.start),
        }

    for step in run.steps():
        for group in (*step_fn.opt_g.param_groups, *step_fn.opt_d.param_groups):
            group["lr"] = lr_at(step)
        batches = (_d4_batch(t, batch_size, data_rng, dev, channels_last) for t in (low, high))
        values = step_fn(*batches)
        done = step + 1
        run.end_step(done, values, log_row)
        if on_step is not None:
            on_step(done, nets)
    summary = {"steps": steps, "scale": scale, "seconds": time.time() - run.started}
    run.finish("cyclegan", summary=summary, tile_size=int(low.shape[-1]))
    return summary
