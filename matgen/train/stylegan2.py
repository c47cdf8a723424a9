"""Train StyleGAN2-ADA on a tile stack.

Losses as in the StyleGAN2/ADA papers (:mod:`matgen.train.losses`): non-saturating logistic
loss, lazy R1 on reals every ``r1_interval`` steps (γ "auto" = 0.0002·R²/batch), path-length
regularisation every ``pl_interval`` steps (weight 2, on half the batch), style mixing, an
exponential moving average of G (half-life ``ema_kimg`` thousand images) used for all sampling,
and ADA on everything D sees. Adam hyper-parameters of regularised networks are rescaled for
lazy regularisation.

Runs on one device, or data-parallel under ``torchrun`` (see :mod:`matgen.train.distributed`):
the batch is split over processes, each draws its own tiles and latents from ``seed + rank``, and
only rank 0 logs and writes checkpoints. Networks and batches are channels-last (on CPU and
CUDA). With ``amp`` the main losses run under bfloat16 autocast on CUDA and on CPUs with native
bfloat16 kernels (:func:`matgen.util.bfloat16_autocast`); regularisers stay in float32.

A resume checkpoint (``<model>.resume.pt``) is written atomically every ``checkpoint_kimg``; a
killed run started again continues from it (bit-identical on one CPU process) and it is removed
once the final model is written. Sampling a trained model: :mod:`matgen.inference.stylegan2`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..data.ada import AUGMENTATIONS, AdaptiveProbability, check_augment_ops
from ..errors import InputError
from ..models.stylegan2 import check_resolution
from ..util import bfloat16_autocast, seed_everything
from .distributed import (
    Distributed,
    all_reduce_gradients,
    all_reduce_sum,
    barrier,
    init_distributed,
    shutdown,
)
from .loop import TrainingRun, ema_update
from .losses import (
    grey_histogram_loss,
    logistic_d_loss,
    nonsaturating_g_loss,
    path_lengths,
    pore_split_level,
    porosity_distribution_loss,
    r1_penalty,
    smoothed_grey_histogram_loss,
    soft_porosity,
    solid_under_pores_loss,
)

if TYPE_CHECKING:  # torch is imported where it is used: the CLI starts fast
    import torch


def _check_tiles(tiles: np.ndarray, path: Any, batch_size: int, world_size: int) -> None:
    n_tiles, _, height, width = tiles.shape
    if height != width:
        raise InputError(f"{path}: tiles are {height} x {width}; StyleGAN2 needs square tiles")
    try:
        check_resolution(height)
    except ValueError:
        raise InputError(
            f"{path}: tile size {height} px is not a power of two; StyleGAN2 "
            f"needs 2^k px tiles (set the tile size, e.g. 64 or 1024)"
        ) from None
    if batch_size % world_size:
        raise InputError(f"batch_size {batch_size} is not divisible by {world_size} processes")
    if n_tiles < batch_size:
        raise InputError(
            f"{path}: {n_tiles} tiles, fewer than one batch ({batch_size}); "
            f"lower batch_size or tile more images"
        )


def _real_sources(
    tiles_path: str | os.PathLike,
    crop_stride: int,
    images_path: str | os.PathLike | None,
    images_table_path: str | os.PathLike | None,
) -> tuple[np.ndarray, Any]:
    """The study's tiles, and what D's real batches are drawn from: the tiles, or with
    ``crop_stride`` > 0 every crop of their size on that grid of the ingested images."""
    from ..data.ingest import load_stack
    from ..data.tiling import grid_crops

    tiles = load_stack(tiles_path)
    if not crop_stride:
        return tiles, tiles
    if images_path is None or images_table_path is None:
        raise InputError(f"crop_stride {crop_stride} needs the ingested images and their table")
    crops = grid_crops(images_path, images_table_path, tiles.shape[-1], int(crop_stride))
    if crops.shape[1:] != tiles.shape[1:]:
        raise InputError(f"{images_path}: crops {crops.shape[1:]} differ from the tiles' "
                         f"{tiles.shape[1:]} ({tiles_path})")  # fmt: skip
    return tiles, crops


def _detector_noise_sd(tiles: np.ndarray) -> float:
    """The tiles' white-noise sd in G's output units ([0, 1] grey levels map to [−1, 1])."""
    from ..metrics.spectra import detector_noise_sd

    x = np.asarray(tiles, np.float32)
    return 2.0 * float(np.median(detector_noise_sd(x.reshape(-1, *x.shape[2:]))))


def pore_floor(tiles: np.ndarray, percentile: float) -> dict[str, float]:
    """G's soft floor from real tiles (N, C, H, W) in [0, 1]: ``pore_floor``, the grey level
    (G's [−1, 1] units) that ``percentile`` % of the tiles' pixels lie below — the darkest the
    signal of an empty pore gets, noise included — and ``pore_floor_width``, the tiles' white
    noise sd in those units (the floor is then as soft as the detector blurs it)."""
    if not 0 < percentile < 50:
        raise InputError(f"stylegan2.pore_floor_percentile {percentile}: a percentile in (0, 50)")
    x = np.asarray(tiles, np.float32)
    return {"pore_floor": 2.0 * float(np.percentile(x, percentile)) - 1.0,
            "pore_floor_width": max(_detector_noise_sd(tiles), 1e-3)}  # fmt: skip


def pore_phase_grey(tiles: np.ndarray) -> float:
    """The grey of an empty pore in real tiles (N, C, H, W) in [0, 1], in G's [−1, 1] units:
    the median of the pore pixels ≥ 1 px inside their pore, the pores cut at the tiles' Otsu
    level after a 1-px Gaussian smoothing, as the morphology stage cuts them."""
    from ..data.threshold import binarise_pores
    from ..metrics.morphology import pore_interior_grey

    x = np.asarray(tiles[:: max(1, len(tiles) // 256)], np.float32)
    x = x.reshape(-1, *x.shape[2:])
    pores, _ = binarise_pores(x, "otsu", smooth_sigma=1.0)
    interior = pore_interior_grey(x, pores)
    if not interior.size:
        raise InputError("stylegan2.two_phase: the real tiles hold no pore interior to measure")
    return 2.0 * float(np.median(interior)) - 1.0


def _generator_config(
    tiles: np.ndarray,
    detector_noise: bool,
    architecture: str,
    pore_floor_percentile: float,
    two_phase: bool,
    pore_outline: tuple[float, float | None],
    pore_cracks: dict[str, float] | None,
    psf_sigma: float = 0.0,
    pore_rim_length: float = 0.0,
    **sizes: Any,
) -> dict[str, Any]:
    """G's constructor arguments for real tiles (N, C, R, R): ``sizes`` (widths, noise layers)
    plus what is measured on the tiles (detector noise sd, pore floor, an empty pore's grey), the
    pore outlines' field (``pore_outline``: its sigma, px, 0: none; its fixed strength, None:
    learnt), the cracks' (``pore_cracks``: ``strength`` > 0, ``width`` px; None: none), the
    probe's blur (``psf_sigma`` px, 0: none) and the edge effect (``pore_rim_length`` px)."""
    _, channels, height, _ = tiles.shape
    config = dict(resolution=height, img_channels=channels, **sizes)
    config["detector_noise_sd"] = _detector_noise_sd(tiles) if detector_noise else 0.0
    if architecture != "skip":
        config["architecture"] = architecture
    if pore_floor_percentile > 0:
        config.update(pore_floor(tiles, pore_floor_percentile))
    if two_phase:
        config["pore_phase_grey"] = pore_phase_grey(tiles)
    outline_sigma, outline_strength = pore_outline  # each written only when set: as before
    if outline_sigma > 0:
        if not two_phase:
            raise InputError("stylegan2.pore_outline_noise_sigma: needs stylegan2.two_phase")
        config["pore_outline_noise_sigma"] = float(outline_sigma)
        if outline_strength is not None:
            config["pore_outline_fixed_strength"] = float(outline_strength)
    elif outline_strength is not None:
        raise InputError("stylegan2.pore_outline_noise_strength: needs pore_outline_noise_sigma")
    if pore_cracks and pore_cracks.get("strength", 0) > 0:
        if not two_phase:
            raise InputError("stylegan2.pore_cracks: needs stylegan2.two_phase")
        config["pore_crack_strength"] = float(pore_cracks["strength"])
        if "width" in pore_cracks:  # else the Generator's default
            config["pore_crack_width"] = float(pore_cracks["width"])
    if psf_sigma > 0:
        config["psf_sigma"] = float(psf_sigma)
    if pore_rim_length > 0:
        if not two_phase:
            raise InputError("stylegan2.pore_rim_length: needs stylegan2.two_phase")
        config["pore_rim_length"] = float(pore_rim_length)
    return config


def _tile_porosity(tiles: np.ndarray, level: float, dev: Any) -> "torch.Tensor":
    """The soft pore fractions at ``level`` (G's [-1, 1] units) of every tile, or of 1024 spread
    over the stack (the loss sorts them)."""
    import torch

    images = torch.from_numpy(np.asarray(tiles[:: max(1, len(tiles) // 1024)], np.float32) * 2 - 1)
    return soft_porosity(images, level).to(dev)


def _networks(
    model_config: dict[str, Any], dev: Any, d_channel_base: int | None = None
) -> tuple[Any, Any, Any]:
    """G, D and the EMA copy of G (same initial weights), channels-last; D's widths from
    ``d_channel_base`` (None: G's ``channel_base``)."""
    import torch

    from ..models.stylegan2 import Discriminator, Generator

    G = Generator(**model_config).to(dev)
    D = Discriminator(
        model_config["resolution"],
        d_channel_base or model_config["channel_base"],
        model_config["channel_max"],
        model_config["img_channels"],
    ).to(dev)
    G_ema = Generator(**model_config).to(dev).eval().requires_grad_(False)
    G_ema.load_state_dict(G.state_dict())
    # oneDNN's and cuDNN's faster layout: on this study's CPU 1.07x (one thread) and 1.09x (two)
    # per kimg (docs/porous.md, "The porous study alone")
    G, D, G_ema = (m.to(memory_format=torch.channels_last) for m in (G, D, G_ema))
    return G, D, G_ema


def _lazy_adam(params: Any, lr: float, interval: int) -> Any:
    """Adam for a network regularised every ``interval`` steps: lr and betas rescaled so the
    lazy regulariser's extra steps do not change the effective optimisation (paper, App. B)."""
    import torch

    c = interval / (interval + 1)
    return torch.optim.Adam(params, lr=lr * c, betas=(0.0, 0.99**c), eps=1e-8)


def lr_rampdown_factor(step: int, total: int, rampdown: float) -> float:
    """The learning rate's multiplier at ``step`` of ``total``: 1, then over the last
    ``rampdown`` fraction of training a half cosine down to 0 at the end (0: always 1). A GAN's
    last state wanders with its constant-rate updates; falling rates let it settle (StyleGAN v1's
    ramp-down, by step, so a resumed run computes the same rates)."""
    if rampdown <= 0 or total <= 0:
        return 1.0
    t = (step / total - (1.0 - rampdown)) / rampdown
    return 1.0 if t <= 0 else 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))


# G's weighted extra losses, as ``StyleGAN2Step.g_step`` names them (and the log's columns)
_G_TERMS = ("grey_histogram", "grey_histogram_phase", "porosity_distribution", "solid_under_pores")


@dataclass
class StyleGAN2Step:
    """One training step of StyleGAN2-ADA: D's logistic loss, lazy R1, G's non-saturating loss,
    lazy path-length regularisation, each a method; gradients are averaged over processes.

    G's optional grey-level terms: the W1 between its batch's and a real batch's grey levels,
    pooled (and smoothed: :func:`~matgen.train.losses.smoothed_grey_histogram_loss`), and per
    phase, pores and solid apart at ``pore_level`` (:func:`~matgen.train.losses.grey_histogram_loss`
    with ``split``). Pooled, a batch with surplus pore pixels has them matched with real solid, and
    G can pay by lightening pore cores instead of drawing fewer pores; per phase, every pore pixel
    is matched with real pore greys whatever pore fraction the batch draws. The porosity term
    (:func:`~matgen.train.losses.porosity_distribution_loss`) sets the pore fraction tile by tile
    through the pixels near ``pore_level`` only: it moves pore boundaries, not pore cores. With
    a two-phase G, the solid under its pores can be held to the solid round them, beyond
    ``solid_under_pores_margin`` (:func:`~matgen.train.losses.solid_under_pores_loss`).

    In :func:`train_stylegan2`: ``lambda_grey_histogram`` weighs the pooled W1 (plus that after a
    Gaussian blur of ``grey_histogram_smoothing`` px where > 0), ``lambda_grey_histogram_phase``
    the per-phase W1 at the real tiles' Otsu level, ``lambda_porosity`` the W1 of per-tile soft
    pore fractions at that level against every real tile's, ``lambda_solid_under_pores`` the
    solid-under-pores term."""

    G: Any
    D: Any
    opt_g: Any
    opt_d: Any
    ada: Any
    ops: tuple[str, ...]
    info: Distributed
    dev: Any
    local_batch: int
    style_mixing: float
    gamma: float
    r1_interval: int
    pl_weight: float
    pl_interval: int
    use_amp: bool
    grey_histogram_weight: float = 0.0
    grey_histogram_smoothing: float = 0.0
    # weight of the grey-level W1 taken per phase (pores and solid apart, cut at ``pore_level``)
    grey_histogram_phase_weight: float = 0.0
    pore_level: float = 0.0
    # the last fraction of ``total_steps`` over which both learning rates fall to 0 (cosine)
    lr_rampdown: float = 0.0
    total_steps: int = 0
    # weight of the W1 between G's per-tile soft pore fractions at ``pore_level`` and
    # ``porosity_target`` (every real tile's)
    porosity_weight: float = 0.0
    porosity_target: Any = None
    # weight and margin of :func:`~matgen.train.losses.solid_under_pores_loss` (two-phase G)
    solid_under_pores_weight: float = 0.0
    solid_under_pores_margin: float = 0.0
    pl_mean: Any = None
    # the regularisers' latest values, logged as they are (they run every few steps)
    last: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import torch

        if self.solid_under_pores_weight > 0 and self.G.pore_phase_grey is None:
            raise InputError(
                "stylegan2.lambda_solid_under_pores: needs stylegan2.two_phase (a generator "
                "that draws the pores as a phase)"
            )
        self.last.update(r1=torch.zeros(()), pl_penalty=torch.zeros(()))
        self.base_lr = [g["lr"] for opt in (self.opt_g, self.opt_d) for g in opt.param_groups]
        if self.pl_mean is None:
            self.pl_mean = torch.zeros((), device=self.dev)

    def state_dict(self) -> dict[str, float]:
        """The path-length running mean and the regularisers' latest values, for resuming."""
        return {
            "pl_mean": float(self.pl_mean),
            "last_r1": float(self.last["r1"]),
            "last_pl": float(self.last["pl_penalty"]),
        }

    def load_state_dict(self, state: dict[str, float]) -> None:
        import torch

        self.pl_mean.fill_(float(state["pl_mean"]))
        self.last.update(
            r1=torch.tensor(state["last_r1"]), pl_penalty=torch.tensor(state["last_pl"])
        )

    def autocast(self) -> Any:
        import torch

        return torch.autocast(device_type=self.dev.type, dtype=torch.bfloat16, enabled=self.use_amp)

    def run_d(self, images: "torch.Tensor") -> "torch.Tensor":
        from ..data.ada import augment

        return self.D(augment(images, self.ada.p, self.ops))

    def latents(self, n: int) -> "torch.Tensor":
        import torch

        return torch.randn(n, self.G.z_dim, device=self.dev)

    def d_step(self, real: "torch.Tensor") -> "torch.Tensor":
        """D on augmented reals and fakes; feeds the ADA overfitting heuristic r_t."""
        import torch

        z = self.latents(self.local_batch)
        with torch.no_grad(), self.autocast():
            fake = self.G(z, mixing_prob=self.style_mixing)
        self.D.requires_grad_(True)
        with self.autocast():
            logits_fake = self.run_d(fake.float())
            logits_real = self.run_d(real)
            loss = logistic_d_loss(logits_real, logits_fake)
        self._apply(self.opt_d, self.D, loss.float())
        sign_sum, count = all_reduce_sum(
            [float(torch.sign(logits_real.detach()).sum()), float(logits_real.numel())],
            self.info,
            self.dev,
        )
        self.ada.accumulate(sign_sum, count)
        return loss

    def r1_step(self, real: "torch.Tensor") -> "torch.Tensor":
        real = real.detach().requires_grad_(True)
        logits = self.run_d(real)
        r1 = r1_penalty(logits, real)
        self._apply(
            self.opt_d, self.D, r1 * (self.gamma / 2) * self.r1_interval + 0 * logits.mean()
        )
        return r1

    def g_step(self, real: "torch.Tensor") -> tuple["torch.Tensor", dict[str, "torch.Tensor"]]:
        """G's non-saturating loss, plus the W1 distance between the grey levels of its batch
        and of the step's real batch where ``grey_histogram_weight`` > 0, the same taken per
        phase where ``grey_histogram_phase_weight`` > 0, and so on for each weighted term
        (their values returned apart)."""
        self.D.requires_grad_(False)
        z = self.latents(self.local_batch)
        phases = self.solid_under_pores_weight > 0
        with self.autocast():
            out = self.G(z, mixing_prob=self.style_mixing, return_phases=phases)
            fake = (out[0] if phases else out).float()
            loss = nonsaturating_g_loss(self.run_d(fake))
        terms = {}
        if self.grey_histogram_weight > 0:
            terms["grey_histogram"] = (
                self.grey_histogram_weight,
                smoothed_grey_histogram_loss(fake, real, self.grey_histogram_smoothing),
            )
        if self.grey_histogram_phase_weight > 0:
            terms["grey_histogram_phase"] = (
                self.grey_histogram_phase_weight,
                grey_histogram_loss(fake, real, split=self.pore_level),
            )
        if self.porosity_weight > 0:
            terms["porosity_distribution"] = (
                self.porosity_weight,
                porosity_distribution_loss(fake, self.porosity_target, self.pore_level),
            )
        if phases:
            terms["solid_under_pores"] = (
                self.solid_under_pores_weight,
                solid_under_pores_loss(out[1], out[2], margin=self.solid_under_pores_margin),
            )
        total = loss.float() + sum(w * value for w, value in terms.values())
        self._apply(self.opt_g, self.G, total)
        return loss, {k: value.detach() for k, (_, value) in terms.items()}

    def pl_step(self) -> "torch.Tensor":
        """Path-length penalty on half the batch, against the running mean length."""
        import torch

        z = self.latents(max(1, self.local_batch // 2))
        fake, ws = self.G(z, mixing_prob=self.style_mixing, return_ws=True)
        lengths = path_lengths(fake, ws)
        mean_len = (
            all_reduce_sum([float(lengths.detach().mean())], self.info, self.dev)[0]
            / self.info.world_size
        )
        self.pl_mean.lerp_(torch.tensor(mean_len, device=self.dev), 0.01)
        penalty = (lengths - self.pl_mean).square().mean()
        self._apply(
            self.opt_g, self.G, penalty * self.pl_weight * self.pl_interval + 0 * fake[0, 0, 0, 0]
        )
        return penalty

    def __call__(self, step: int, real: "torch.Tensor") -> dict[str, "torch.Tensor"]:
        import torch

        if self.lr_rampdown > 0:
            scale = lr_rampdown_factor(step, self.total_steps, self.lr_rampdown)
            groups = [g for opt in (self.opt_g, self.opt_d) for g in opt.param_groups]
            for group, lr in zip(groups, self.base_lr):
                group["lr"] = lr * scale
        loss_d = self.d_step(real)
        r1 = self.r1_step(real) if step % self.r1_interval == 0 and self.gamma > 0 else None
        loss_g, terms = self.g_step(real)
        pl = self.pl_step() if step % self.pl_interval == 0 and self.pl_weight > 0 else None
        zero = torch.zeros((), device=self.dev)
        if step % self.r1_interval == 0:
            self.last["r1"] = (zero if r1 is None else r1).detach()
        if step % self.pl_interval == 0:
            self.last["pl_penalty"] = (zero if pl is None else pl).detach()
        return {"loss_d": loss_d, "loss_g": loss_g, **terms}

    def _apply(self, opt: Any, net: Any, loss: "torch.Tensor") -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        all_reduce_gradients(net.parameters(), self.info)
        opt.step()


def train_stylegan2(
    tiles_path: str | os.PathLike,
    model_out: str | os.PathLike,
    log_out: str | os.PathLike,
    *,
    seed: int = 0,
    total_kimg: float = 25_000,
    batch_size: int = 32,
    z_dim: int = 512,
    w_dim: int = 512,
    n_mapping: int = 8,
    channel_base: int = 32768,
    channel_max: int = 512,
    d_channel_base: int | None = None,
    lr: float = 0.0025,
    r1_gamma: float | str = "auto",
    r1_interval: int = 16,
    pl_weight: float = 2.0,
    pl_interval: int = 4,
    style_mixing: float = 0.9,
    ema_kimg: float = 10.0,
    ada_target: float = 0.6,
    ada_interval: int = 4,
    ada_kimg: float = 500.0,
    noise_min_resolution: int = 0,
    noise_max_resolution: int = 0,
    noise_lr_mul: float = 1.0,
    log_noise_strength: float = 0.0,
    lambda_grey_histogram: float = 0.0,
    grey_histogram_smoothing: float = 0.0,
    lambda_grey_histogram_phase: float = 0.0,
    lambda_porosity: float = 0.0,
    lr_rampdown: float = 0.0,
    detector_noise: bool = False,
    psf_sigma: float = 0.0,
    architecture: str = "skip",
    pore_floor_percentile: float = 0.0,
    two_phase: bool = False,
    pore_outline_noise_sigma: float = 0.0,
    pore_outline_noise_strength: float | None = None,
    pore_cracks: dict[str, float] | None = None,
    pore_rim_length: float = 0.0,
    lambda_solid_under_pores: float = 0.0,
    solid_under_pores_margin: float = 0.0,
    monitor_kimg: float = 0.0,
    select_from_kimg: float = 0.0,
    snapshot_tolerances: dict[str, float] | None = None,
    crop_stride: int = 0,
    images_path: str | os.PathLike | None = None,
    images_table_path: str | os.PathLike | None = None,
    augmentations: list[str] | None = None,
    checkpoint_kimg: float = 50.0,
    log_every: int = 10,
    device: str = "auto",
    amp: bool = True,
    show_progress: bool = True,
    on_step: Callable[[int, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train on tiles ``(N, C, R, R)`` in [0, 1] (the tile stage's ``tiles.npy``); write
    ``model_out`` (.pt) and a CSV log ``log_out``; call ``on_step(step, state)``. Options, the
    paper's or off at their defaults: ``d_channel_base``, D's ``channel_base`` (None: G's);
    ``noise_*``, ``log_noise_strength``, ``architecture``: :class:`.Generator`'s;
    ``lr_rampdown``: learning rates fall to 0 over this last fraction (cosine);
    ``psf_sigma`` > 0: G's image is blurred by a Gaussian of this sigma (px), then gets white
    noise of the real tiles' own sd if ``detector_noise``; ``pore_floor_percentile`` > 0: a soft
    floor under G's signal (:func:`pore_floor`); ``two_phase``: G draws the pores as a phase, of
    :func:`pore_phase_grey`, and, where set, their outline field (``pore_outline_noise_*``),
    cracks (``pore_cracks``) and edge effect (``pore_rim_length``): :class:`.Generator`'s.
    G's extra losses, each weighted by its ``lambda_`` (0: off), with ``grey_histogram_*``,
    ``solid_under_pores_margin``: :class:`StyleGAN2Step`. ``monitor_kimg`` > 0: about every this
    many kimg the log gets the EMA tiles' porosity (:class:`PorosityMonitor`), from
    ``select_from_kimg`` > 0 on the model keeps the EMA snapshot that best met the targets
    (``snapshot_tolerances``; 0: the last); ``crop_stride`` > 0: D's reals are crops at every that
    many px of the images (``images_path``, ``images_table_path``)."""
    tiles, reals = _real_sources(tiles_path, crop_stride, images_path, images_table_path)
    info, dev = init_distributed(device)
    _check_tiles(tiles, tiles_path, batch_size, info.world_size)
    ops = check_augment_ops(augmentations, AUGMENTATIONS, "augmentations")
    local_batch = batch_size // info.world_size
    gamma = 0.0002 * tiles.shape[2] ** 2 / batch_size if r1_gamma == "auto" else float(r1_gamma)
    total_steps = max(1, math.ceil(total_kimg * 1000 / batch_size))
    model_config = _generator_config(
        tiles, detector_noise, architecture, pore_floor_percentile, two_phase,
        (pore_outline_noise_sigma, pore_outline_noise_strength), pore_cracks, psf_sigma,
        pore_rim_length, z_dim=z_dim, w_dim=w_dim, n_mapping=n_mapping, channel_base=channel_base,
        channel_max=channel_max, noise_min_resolution=noise_min_resolution,
        noise_max_resolution=noise_max_resolution, noise_lr_mul=noise_lr_mul,
        log_noise_strength=log_noise_strength)  # fmt: skip
    pore_level = pore_split_level(tiles) if lambda_grey_histogram_phase or lambda_porosity else 0.0
    seed_everything(seed)  # identical initial weights on every process
    G, D, G_ema = _networks(model_config, dev, d_channel_base)
    step_fn = StyleGAN2Step(
        G, D, _lazy_adam(G.parameters(), lr, pl_interval),
        _lazy_adam(D.parameters(), lr, r1_interval),
        AdaptiveProbability(target=ada_target, interval=ada_interval, kimg=ada_kimg),
        ops, info, dev, local_batch, style_mixing, gamma, r1_interval, pl_weight, pl_interval,
        bfloat16_autocast(dev, amp), lambda_grey_histogram, grey_histogram_smoothing,
        lambda_grey_histogram_phase, pore_level, lr_rampdown, total_steps, lambda_porosity,
        _tile_porosity(tiles, pore_level, dev) if lambda_porosity else None,
        solid_under_pores_weight=lambda_solid_under_pores,
        solid_under_pores_margin=solid_under_pores_margin)  # fmt: skip
    monitor = _monitor(tiles, monitor_kimg, select_from_kimg, batch_size, total_steps,
                       snapshot_tolerances)  # fmt: skip
    run = TrainingRun(
        model_out, log_out, total=total_steps, model_config=model_config,
        modules={"G": G, "D": D, "G_ema": G_ema},
        states={"opt_g": step_fn.opt_g, "opt_d": step_fn.opt_d, "ada": step_fn.ada,
                "regularisers": step_fn},
        device=dev, log_every=log_every, restore_rng=info.is_main,
        checkpoint_every=round(checkpoint_kimg * 1000 / batch_size),
        desc="StyleGAN2-ADA", show_progress=show_progress, is_main=info.is_main,
        extra_state=lambda: {"data_rng": data_rng.bit_generator.state,
                             "monitor": monitor.state() if monitor else None},
        sync=lambda: barrier(info),
    )  # fmt: skip
    data_rng = _resumed_streams(run, info, seed)  # before the first checkpoint reads it
    summary = _train_loop(run, step_fn, G_ema, reals, data_rng, batch_size, ema_kimg, on_step,
                          monitor)  # fmt: skip
    shutdown(info)
    return summary


def _pore_field_log(G_ema: Any) -> dict[str, float]:
    """The log columns of G's pore fields, where it has them: the outline field's and the edge
    effect's strengths, and the crack gate's mean over 256 fixed latents (about the share of
    tiles whose crack shows)."""
    import torch

    columns = {}
    if G_ema.pore_outline_noise_sigma > 0:
        columns["pore_outline_strength"] = float(G_ema.pore_outline_strength)
    if G_ema.pore_rim_length > 0:
        columns["pore_rim_strength"] = float(G_ema.pore_rim_strength)
    if G_ema.pore_crack_strength > 0:
        z = torch.randn(256, G_ema.z_dim, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            w = G_ema.map(z.to(G_ema.const.device))
            columns["pore_crack_gate"] = float(torch.sigmoid(G_ema.pore_crack_gate(w)).mean())
    return columns


def _resumed_streams(run: TrainingRun, info: Distributed, seed: int) -> np.random.Generator:
    """The tile stream (and torch's): per-rank seeds on a fresh run; on a resumed one replayed
    on the main process, fresh per (rank, step) elsewhere — exact replay only on one process."""
    import torch

    data_rng = np.random.default_rng(seed + 1_000_003 * info.rank)
    if run.resumed is not None:
        if info.is_main:
            data_rng.bit_generator.state = run.resumed["data_rng"]
        else:
            data_rng = np.random.default_rng([seed, info.rank, run.start])
            torch.manual_seed(seed * 7919 + info.rank * 104729 + run.start)
    elif info.enabled:
        torch.manual_seed(seed + 1_000_003 * info.rank)
    return data_rng


class PorosityMonitor:
    """How far the EMA generator's tiles are from the real porosity, while it trains: the mean
    porosity of ``n`` tiles from fixed seeds (their noise seeded too, so training's random
    streams are untouched and the numbers are comparable step to step), cut at the real tiles'
    Otsu level after ``smooth_sigma`` px smoothing — one level for both, so a drift in how dark
    the tiles are shows. Measured at the first log row after every ``every_kimg`` and at the
    last step (``total_steps``).

    ``select_from_kimg`` > 0: from then on each measurement also scores ``n_select`` tiles
    against the real ones (:func:`~matgen.pipeline.morphology.tile_set_mismatch`, the study's
    targets, each in widths of its tolerance in ``tolerances``; column ``snapshot_mismatch``)
    and keeps the EMA weights of the lowest score in :attr:`best` — a snapshot chosen on the
    targets, as GAN practice keeps the one of best FID."""

    def __init__(
        self,
        tiles: np.ndarray,
        every_kimg: float,
        batch_size: int,
        total_steps: int = 0,
        n: int = 64,
        smooth_sigma: float = 1.0,
        select_from_kimg: float = 0.0,
        n_select: int = 256,
        tolerances: dict[str, float] | None = None,
    ) -> None:
        from ..data.threshold import binarise_pores
        from ..pipeline.morphology import describe_tile_set

        real = np.asarray(tiles[:, 0], np.float32)
        pores, self.level = binarise_pores(real, "otsu", smooth_sigma)
        self.real_porosity = float(pores.mean())
        self.every = max(1, round(every_kimg * 1000 / batch_size))
        self.next, self.total = self.every, total_steps
        self.n, self.smooth_sigma, self.n_select = n, smooth_sigma, n_select
        self.select_from = math.ceil(select_from_kimg * 1000 / batch_size) or None
        self.tolerances = tolerances
        # the real side of every score, measured once
        self.real = describe_tile_set(real, "otsu", smooth_sigma) if self.select_from else None
        self.best: dict[str, Any] | None = None
        self.best_score, self.best_step = math.inf, -1

    def resume(self, start_step: int, checkpoint: dict[str, Any] | None) -> None:
        """Continue after ``start_step`` with the snapshot kept in a resume ``checkpoint``."""
        self.next = (start_step // self.every + 1) * self.every
        if checkpoint is not None and checkpoint.get("monitor"):
            self.best, self.best_score, self.best_step = checkpoint["monitor"]

    def state(self) -> tuple[dict[str, Any] | None, float, int]:
        return self.best, self.best_score, self.best_step

    def __call__(self, G_ema: Any, step: int) -> dict[str, float]:
        """``ema_porosity`` (NaN between measurements), ``real_porosity`` and, when selecting,
        ``snapshot_mismatch`` (NaN where not scored) for a log row."""
        from ..data.threshold import binarise_pores
        from ..inference.stylegan2 import generate
        from ..pipeline.morphology import tile_set_mismatch

        value = score = float("nan")
        if step >= self.next or step == self.total:
            scored = self.select_from is not None and step >= self.select_from
            n = max(self.n, self.n_select) if scored else self.n
            images = generate(G_ema, np.arange(n) + 7_000_000, batch_size=self.n)[:, 0]
            pores = binarise_pores(images[: self.n], self.level, self.smooth_sigma)[0]
            value = float(pores.mean())
            if scored:
                score = tile_set_mismatch(
                    self.real, images, "otsu", self.smooth_sigma, tolerances=self.tolerances
                )["score"]
                if score < self.best_score:
                    self.best = {k: v.detach().clone() for k, v in G_ema.state_dict().items()}
                    self.best_score, self.best_step = score, step
            self.next = (step // self.every + 1) * self.every
        row = {"ema_porosity": value, "real_porosity": self.real_porosity}
        return row if self.select_from is None else {**row, "snapshot_mismatch": score}


def _monitor(
    tiles: np.ndarray,
    monitor_kimg: float,
    select_from_kimg: float,
    batch_size: int,
    total: int,
    tolerances: dict[str, float] | None,
) -> PorosityMonitor | None:
    """The run's monitor (None without ``monitor_kimg``); choosing a snapshot needs one."""
    if select_from_kimg and not monitor_kimg:
        raise InputError(
            f"stylegan2: select_from_kimg {select_from_kimg} chooses among the monitor's "
            "snapshots; set monitor_kimg > 0 (e.g. 0.5)"
        )
    if not monitor_kimg:
        return None
    return PorosityMonitor(
        tiles, monitor_kimg, batch_size, total, select_from_kimg=select_from_kimg,
        tolerances=tolerances,
    )  # fmt: skip


def _train_loop(
    run: TrainingRun,
    step_fn: StyleGAN2Step,
    G_ema: Any,
    reals: Any,
    data_rng: np.random.Generator,
    batch_size: int,
    ema_kimg: float,
    on_step: Callable[[int, dict[str, Any]], None] | None,
    monitor: PorosityMonitor | None = None,
) -> dict[str, Any]:
    """The steps of :func:`train_stylegan2` still to run: real batches of ``reals`` (tiles or
    :class:`~matgen.data.tiling.GridCrops`) drawn by ``data_rng``, EMA of G,
    ADA's p, logging (with ``monitor``'s columns) and checkpoints through ``run``; writes the
    model file at the end."""
    import torch

    G, D, dev = step_fn.G, step_fn.D, step_fn.dev
    if monitor is not None:
        monitor.resume(run.start, run.resumed)

    def real_batch() -> torch.Tensor:
        idx = np.sort(data_rng.integers(0, len(reals), step_fn.local_batch))
        x = torch.from_numpy(np.asarray(reals[idx], dtype=np.float32)).to(dev) * 2 - 1
        return x.contiguous(memory_format=torch.channels_last)

    ema_beta = 0.5 ** (batch_size / max(ema_kimg * 1000, 1e-8))
    tick = {"time": time.time(), "images": 0}

    def log_row(means: dict[str, float]) -> dict[str, Any]:
        now = time.time()
        sec_per_kimg = (now - tick["time"]) / (tick["images"] / 1000)
        tick.update(time=now, images=0)
        return dict(
            kimg=round(done * batch_size / 1000, 4),
            loss_d=means["loss_d"],
            loss_g=means["loss_g"],
            r1=float(step_fn.last["r1"]),
            pl_penalty=float(step_fn.last["pl_penalty"]),
            pl_mean=float(step_fn.pl_mean),
            ada_p=step_fn.ada.p,
            ada_rt=step_fn.ada.rt,
            sec_per_kimg=sec_per_kimg,
            **{k: means[k] for k in _G_TERMS if k in means},
            **_pore_field_log(G_ema),
            **(monitor(G_ema, done) if monitor is not None else {}),
        )

    for step in run.steps():
        values = step_fn(step, real_batch())
        ema_update(G_ema, G, ema_beta)
        step_fn.ada.update(step, batch_size)
        tick["images"] += batch_size
        done = step + 1
        run.end_step(done, values, log_row, watch=[G])
        if on_step is not None:
            on_step(done, {"G": G, "D": D, "ada": step_fn.ada})

    if monitor is not None and monitor.best is not None:  # the model file holds the chosen one
        G_ema.load_state_dict(monitor.best)
    summary = {
        "steps": run.total,
        "kimg": run.total * batch_size / 1000,
        "selected_kimg": (monitor.best_step if monitor and monitor.best else run.total)
        * batch_size
        / 1000,
        "ada_p": step_fn.ada.p,
        "r1_gamma": step_fn.gamma,
        "processes": step_fn.info.world_size,
        "seconds": time.time() - run.started,
    }
    run.finish("stylegan2", summary=summary)
    return summary
