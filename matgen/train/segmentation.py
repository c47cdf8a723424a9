"""Training of the segmentation study's models: the VQ-VAE over image + mask, the gated
PixelCNN prior over its code maps, and the U-Net segmenters trained on real/synthetic mixes.

All three draw random ``crop``² windows (random D4 transform) per step from their images, so a
handful of real micrographs gives many distinct training views; epoch-based, seeded and
resumable (:class:`~matgen.train.loop.TrainingRun`).
"""

from __future__ import annotations

import math
import os
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ..data.augment import random_d4_windows
from ..errors import InputError
from ..inference.segmentation import UNLABELLED, class_fractions
from ..util import bfloat16_autocast, seed_everything, select_device
from .loop import TrainingRun

if TYPE_CHECKING:  # torch is imported where it is used: the CLI starts fast
    import torch


def random_crops(
    images: np.ndarray, masks: np.ndarray, n: int, crop: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random ``crop``² windows with random D4 transforms from (N, 1, H, W) images and
    their (N, H, W) masks; returns float32 (n, 1, crop, crop) and int64 (n, crop, crop)."""
    h, w = images.shape[-2:]
    if crop > min(h, w):
        raise InputError(f"crop {crop} is larger than the {h} x {w} images")
    x, m = random_d4_windows((images, masks), n, crop, rng)
    return np.ascontiguousarray(x, np.float32), np.ascontiguousarray(m, np.int64)


def train_vqvae(
    images: np.ndarray,
    masks: np.ndarray,
    model_out: str | os.PathLike,
    log_out: str | os.PathLike,
    *,
    n_classes: int,
    seed: int = 0,
    epochs: int = 30,
    steps_per_epoch: int = 50,
    batch_size: int = 16,
    crop: int = 64,
    width: int = 64,
    n_res: int = 2,
    embed_dim: int = 32,
    n_codes: int = 128,
    downsample: int = 4,
    decay: float = 0.99,
    beta: float = 0.25,
    lr: float = 1e-3,
    upsample: str = "transpose",
    residual_noise: bool = False,
    image_weight: float = 1.0,
    encoder_mask: str = "all",
    device: str = "auto",
    show_progress: bool = True,
) -> dict[str, Any]:
    """Fit the VQ-VAE to image + annotated-mask crops; log MSE, mask CE, commitment, codebook
    perplexity and the number of codes used per epoch. With ``residual_noise`` the model then
    keeps the power spectrum of its residuals on 256 ``crop``² training crops (the noise added to
    generated images; the summary gives its standard deviation). ``encoder_mask``: what of the
    mask the codes encode — ``all``, ``phases`` (not the pores) or ``none``; what they do not,
    the decoder draws from the image (:class:`~matgen.models.vqvae.VQVAE`)."""
    import torch

    from ..models.vqvae import VQVAE
    from .losses import vqvae_loss

    dev = select_device(device)
    seed_everything(seed)
    cfg = dict(
        n_classes=n_classes,
        img_channels=int(images.shape[1]),
        width=width,
        n_res=n_res,
        embed_dim=embed_dim,
        n_codes=n_codes,
        downsample=downsample,
        decay=decay,
        upsample=upsample,
        noise_size=crop if residual_noise else 0,
    )
    if encoder_mask != "all":  # only then: checkpoints written before keep their config
        cfg["encoder_mask"] = encoder_mask
    # oneDNN's faster layout: 1.5x per step on CPU at these widths, same on GPU
    model = VQVAE(**cfg).to(dev, memory_format=torch.channels_last)
    opt, run = TrainingRun.with_adam(
        model_out,
        log_out,
        model,
        cfg,
        lr=lr,
        epochs=epochs,
        device=dev,
        desc="VQ-VAE",
        show_progress=show_progress,
    )
    for epoch in run.steps():
        rng = np.random.default_rng([seed, epoch])
        model.train()
        sums = np.zeros(3)
        counts = torch.zeros(n_codes, device=dev)
        for _ in range(steps_per_epoch):
            x, m = random_crops(images, masks, batch_size, crop, rng)
            x, m = torch.from_numpy(x).to(dev), torch.from_numpy(m).to(dev)
            # the encoder reads unlabelled pixels as class 0; the loss leaves them out
            recon, logits, commitment, codes = model(x, m)
            loss, mse, ce = vqvae_loss(
                recon, logits, x, m, commitment, beta, UNLABELLED, image_weight
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sums += [float(mse.detach()), float(ce.detach()), float(commitment.detach())]
            counts += torch.bincount(codes.flatten(), minlength=n_codes)
        p = (counts / counts.sum()).cpu().numpy()
        perplexity = float(np.exp(-(p[p > 0] * np.log(p[p > 0])).sum()))
        sums /= steps_per_epoch
        run.end_step(
            epoch + 1,
            dict(
                mse=sums[0],
                mask_ce=sums[1],
                commitment=sums[2],
                perplexity=perplexity,
                codes_used=int((p > 0).sum()),
            ),
        )
    summary = {"epochs": epochs, "seconds": time.time() - run.started}
    if residual_noise:
        x, m = random_crops(images, masks, 256, crop, np.random.default_rng([seed, epochs]))
        model.eval()
        summary["residual_std"] = model.fit_residual_noise(
            torch.from_numpy(x).to(dev), torch.from_numpy(m).to(dev)
        )
    run.finish("vqvae", summary=summary)
    return summary


def epochs_within_passes(
    epochs: int, max_passes: float | None, n_codes: int, codes_per_epoch: int
) -> int:
    """``epochs``, or fewer where that many would show each of ``n_codes`` codes more than
    ``max_passes`` times (``codes_per_epoch`` seen per epoch); at least one."""
    if max_passes is None:
        return epochs
    # the rounding guard keeps an exact fit (600 passes in 24 epochs) at 24
    fit = math.ceil(max_passes * n_codes / codes_per_epoch - 1e-9)
    return max(1, min(epochs, fit))


def train_pixelcnn(
    codes: np.ndarray,
    model_out: str | os.PathLike,
    log_out: str | os.PathLike,
    *,
    n_codes: int,
    seed: int = 0,
    epochs: int = 30,
    steps_per_epoch: int = 50,
    batch_size: int = 32,
    window: int = 16,
    dim: int = 64,
    n_layers: int = 8,
    kernel: int = 5,
    lr: float = 1e-3,
    max_passes: float | None = None,
    class_counts: np.ndarray | None = None,
    class_map_counts: np.ndarray | None = None,
    class_map_classes: int | None = None,
    class_map_marks: np.ndarray | None = None,
    class_map_mark_classes: int = 1,
    class_map_window: int = 16,
    class_map_batch_size: int = 16,
    pore_map: np.ndarray | None = None,
    pore_map_dim: int = 32,
    pore_map_batch_size: int | None = None,
    map_kernel: int = 5,
    map_context: int = 0,
    amp: bool = False,
    device: str = "auto",
    show_progress: bool = True,
) -> dict[str, Any]:
    """Fit the gated PixelCNN to random ``window``² windows (random D4) of the code maps
    (N, h, w); log the cross-entropy in nats and bits per code.

    ``class_map_counts`` (N, C, h/k, w/k), the mask's pixels of each class under each cell of
    a coarser grid (k codes a side): the prior is then a
    :class:`~matgen.models.pixelcnn.HierarchicalPrior` — a PixelCNN over the class map (each
    cell's most common class of the first ``class_map_classes``, None: all; the others are
    left to the codes; ``class_map_marks`` (N, h/k, w/k) bool or int, cells of a class of
    their own (value v > 0: the v-th of ``class_map_mark_classes``) drawn over that map, such
    as pores' centres and their size classes; ``class_map_window``² windows,
    ``class_map_batch_size`` a step, fewer where ``max_passes`` caps its passes over the class
    maps; its NLL logged as ``class_map_nll``) and the code prior given the whole class map —
    both trained in the same steps, teacher-forced on the real maps. ``pore_map`` (N, h, w)
    bool, which codes hold pores, or (N, d, d, h, w), which of their pixels (the level then
    draws 2^(d²) symbols): a middle level of width ``pore_map_dim`` draws it given the
    class map, and the codes see both (its NLL logged as ``pore_map_nll``), on the first
    ``pore_map_batch_size`` of the code level's windows a step (None: all). ``map_kernel``,
    ``map_context``: the conditioning-map convolutions' side and context network's depth
    (:class:`~matgen.models.pixelcnn.GatedPixelCNN`). ``amp``: bfloat16 autocast where the
    hardware makes it pay (:func:`matgen.util.bfloat16_autocast`; a step ~1.7x faster).

    ``class_counts`` (N, C, h, w), the mask's pixels of each class under each code: the prior
    is then conditioned on each window's class fractions, and keeps the maps (in its model
    file) to draw conditions from when it samples.

    ``max_passes``: at most this many passes over the codes (windows × window² / codes), in
    whole epochs: at the same steps a prior of 2 images learns them by heart (0.5 nats a code
    against 1.5 for 8) and samples copies of them.
    """
    import torch

    from ..models.pixelcnn import GatedPixelCNN, HierarchicalPrior

    h, w = codes.shape[-2:]
    if window > min(h, w):
        raise InputError(f"PixelCNN window {window} is larger than the {h} x {w} code maps")
    epochs = epochs_within_passes(epochs, max_passes, len(codes) * h * w,
                                  steps_per_epoch * batch_size * window**2)  # fmt: skip
    dev = select_device(device)
    seed_everything(seed)
    n_cond = 0 if class_counts is None else int(class_counts.shape[1])
    cfg = dict(n_codes=n_codes, dim=dim, n_layers=n_layers, kernel=kernel, n_cond=n_cond)
    top = None
    _check_pore_map(pore_map, codes.shape, class_map_counts is not None)
    if class_map_counts is not None:
        top = _class_map_data(class_map_counts, class_map_classes, class_map_marks,
                              class_map_mark_classes, h, class_map_window, class_map_batch_size,
                              max_passes, epochs * steps_per_epoch)  # fmt: skip
        cfg.update(n_classes=top["n_classes"], cell=top["cell"], map_kernel=map_kernel,
                   map_context=map_context)  # fmt: skip
        if pore_map is not None:
            # (N, d, d, h, w): which of each code's d x d pixels are pore, 2^(d²) symbols
            symbols = 2 ** (pore_map.shape[1] ** 2) if pore_map.ndim == 5 else 2
            cfg.update(pore_dim=pore_map_dim, pore_symbols=symbols)
            top["pore_batch_size"] = pore_map_batch_size or batch_size
    model = (HierarchicalPrior(**cfg) if top else GatedPixelCNN(**cfg)).to(dev)
    use_amp = bfloat16_autocast(dev, amp)
    opt, run = TrainingRun.with_adam(model_out, log_out, model, cfg, lr=lr, epochs=epochs,
                                     device=dev, desc="PixelCNN",
                                     show_progress=show_progress)  # fmt: skip
    for epoch in run.steps():
        rng = np.random.default_rng([seed, epoch])
        model.train()
        totals: dict[str, float] = {}
        for _ in range(steps_per_epoch):
            # the same draws with or without the class counts cut beside the codes
            stacks = (codes,) if class_counts is None else (codes, class_counts)
            stacks += (top["cond_maps"],) if top else ()
            stacks += (pore_map,) if pore_map is not None else ()
            blocks = (len(stacks) - 1,) if pore_map is not None and pore_map.ndim == 5 else ()
            windows = random_d4_windows(stacks, batch_size, window, rng, blocks)
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=use_amp):
                losses = _prior_losses(model, windows, n_cond, top, rng, dev)
            opt.zero_grad(set_to_none=True)
            sum(losses.values()).backward()
            opt.step()
            for name, loss in losses.items():
                totals[name] = totals.get(name, 0.0) + float(loss.detach())
        nll = totals.pop("nll") / steps_per_epoch
        values = dict(nll=nll, bits_per_code=nll / np.log(2))
        values.update({k: v / steps_per_epoch for k, v in totals.items()})
        run.end_step(epoch + 1, values)
    summary = {"epochs": epochs, "seconds": time.time() - run.started, "window": window}
    if top:
        summary["class_map_batch_size"] = top["batch_size"]
    conditions = {} if class_counts is None else {"class_counts": torch.from_numpy(class_counts)}
    run.finish("pixelcnn", window=window, summary=summary, **conditions)
    return summary


def _prior_losses(
    model: "torch.nn.Module",
    windows: list[np.ndarray],
    n_cond: int,
    top: dict[str, Any] | None,
    rng: np.random.Generator,
    dev: "torch.device",
) -> dict[str, "torch.Tensor"]:
    """One step's cross-entropies of a prior on windows of (codes[, class counts][, the
    class map's conditioning map][, the pore map]): ``nll`` (the codes), and for a
    hierarchical prior (``top``: :func:`_class_map_data`) ``class_map_nll`` on windows of its
    own and ``pore_map_nll`` where it has a pore level."""
    import torch
    import torch.nn.functional as F

    from ..models.pixelcnn import with_pore_map

    c, *rest = windows
    cond = torch.from_numpy(class_fractions(rest[0])).to(dev) if n_cond else None
    c = torch.from_numpy(np.ascontiguousarray(c, np.int64)).to(dev)
    if top is None:
        return {"nll": F.cross_entropy(model(c, cond).float(), c)}
    cond_map = torch.from_numpy(rest[n_cond > 0].astype(np.float32)).to(dev)
    losses = {}
    if model.pores is not None:
        pores = torch.from_numpy(pore_symbols(rest[-1])).to(dev)
        b = top["pore_batch_size"]
        sub_cond = cond[:b] if cond is not None else None
        logits = model.pores(pores[:b], sub_cond, cond_map[:b]).float()
        losses["pore_map_nll"] = F.cross_entropy(logits, pores[:b])
        cond_map = with_pore_map(cond_map, pores, model.pore_symbols)
    losses["nll"] = F.cross_entropy(model.bottom(c, cond, cond_map).float(), c)
    losses["class_map_nll"] = _class_map_loss(model.top, top, rng, dev)
    return losses


def pore_symbols(pores: np.ndarray) -> np.ndarray:
    """A pore map's symbols (N, h, w) int64: (N, h, w) bool as 0 / 1, or pixel blocks (N, d,
    d, h, w) as the number whose bit a d + b is pixel (a, b) of the code."""
    pores = np.asarray(pores)
    if pores.ndim == 3:
        return np.ascontiguousarray(pores, np.int64)
    d = pores.shape[1]
    weights = (2 ** np.arange(d * d)).reshape(1, d, d, 1, 1)
    return (pores.astype(np.int64) * weights).sum((1, 2))


def _check_pore_map(
    pore_map: np.ndarray | None, code_shape: tuple[int, ...], hierarchical: bool
) -> None:
    if pore_map is None:
        return
    if not hierarchical:
        raise InputError("a pore map is drawn between a class map and the codes: "
                         "give class_map_counts")  # fmt: skip
    shape = pore_map.shape[:1] + pore_map.shape[-2:]
    if pore_map.ndim not in (3, 5) or shape != code_shape:
        raise InputError(f"a pore map of shape {pore_map.shape} for code maps of "
                         f"{code_shape}")  # fmt: skip


def _class_map_data(
    counts: np.ndarray,
    classes: int | None,
    marks: np.ndarray | None,
    mark_classes: int,
    code_rows: int,
    window: int,
    batch_size: int,
    max_passes: float | None,
    steps: int,
) -> dict[str, Any]:
    """What a two-level prior's class map trains on: the class maps (each cell's most common
    of the first ``classes`` classes; None: all; ``marks`` (N, h/k, w/k), where not None and
    v > 0, the v-th of ``mark_classes`` classes of their own after those) of the count maps
    (N, C, h/k, w/k), their counts
    (conditions), the code prior's conditioning maps on the code grid (uint8 one-hot, cut with
    the codes' windows), the cell (k codes a side), the classes drawn and the windows a step:
    ``batch_size``, fewer where ``steps`` of them would pass over each cell more than
    ``max_passes`` times (2 images' class maps at 16 a step were learnt by heart: 0.16 nats a
    cell against 0.30 for 8)."""
    import torch

    from ..models.pixelcnn import class_map_condition

    if window > min(counts.shape[-2:]):
        raise InputError(f"class-map window {window} is larger than the "
                         f"{counts.shape[-2]}-cell class maps")  # fmt: skip
    maps = counts[:, :classes].argmax(1)
    if max_passes is not None:
        batch_size = max(
            1, min(batch_size, int(max_passes * maps.size / (steps * window**2) + 1e-9))
        )
    n_classes = int(counts.shape[1] if classes is None else classes)
    if marks is not None:
        if marks.shape != maps.shape:
            raise InputError(f"class-map marks of shape {marks.shape} for class maps of "
                             f"{maps.shape}")  # fmt: skip
        if int(marks.max(initial=0)) > mark_classes:
            raise InputError(f"class-map marks up to {int(marks.max())} for "
                             f"{mark_classes} mark classes")  # fmt: skip
        # a mark's value v > 0 is class n_classes + v - 1 (a pore's size class, say)
        maps = np.where(marks > 0, n_classes + marks.astype(np.int64) - 1, maps)
        n_classes += mark_classes
    cell = code_rows // counts.shape[-2]
    cond_maps = class_map_condition(torch.from_numpy(maps), n_classes, cell).numpy()
    return dict(maps=maps, counts=counts, cond_maps=cond_maps.astype(np.uint8), cell=cell,
                n_classes=n_classes, window=window, batch_size=batch_size)  # fmt: skip


def _class_map_loss(
    top: "torch.nn.Module", data: dict[str, Any], rng: np.random.Generator, dev: "torch.device"
) -> "torch.Tensor":
    """The class-map prior's cross-entropy on random windows (random D4) of the class maps of
    :func:`_class_map_data`, each conditioned on its window's class fractions."""
    import torch
    import torch.nn.functional as F

    m, counts = random_d4_windows((data["maps"], data["counts"]), data["batch_size"],
                                  data["window"], rng)  # fmt: skip
    cond = torch.from_numpy(class_fractions(counts)).to(dev) if top.n_cond else None
    m = torch.from_numpy(np.ascontiguousarray(m, np.int64)).to(dev)
    return F.cross_entropy(top(m, cond).float(), m)


def class_weights(masks: list[np.ndarray], n_classes: int) -> np.ndarray:
    """Median-frequency balancing (Eigen & Fergus 2015): w_c = median(f) / f_c over the labelled
    pixels of ``masks``, so a rare phase (pores, a few % of the area) is not ignored; classes
    that never occur get weight 1."""
    counts = np.zeros(n_classes)
    for m in masks:
        m = np.asarray(m)
        m = m[m != UNLABELLED]
        counts += np.bincount(m.astype(np.int64).ravel(), minlength=n_classes)[:n_classes]
    freq = counts / max(counts.sum(), 1)
    present = freq > 0
    weights = np.ones(n_classes)
    if present.any():
        weights[present] = np.median(freq[present]) / freq[present]
    return weights.astype(np.float32)


def train_segmenter(
    real: tuple[np.ndarray, np.ndarray],
    synthetic: tuple[np.ndarray, np.ndarray],
    synthetic_share: float,
    *,
    n_classes: int,
    seed: int = 0,
    epochs: int = 10,
    steps_per_epoch: int = 30,
    batch_size: int = 8,
    crop: int = 64,
    width: int = 16,
    depth: int = 3,
    lr: float = 2e-3,
    decision: str = "fraction_matched",
    amp: bool = False,
    device: str = "auto",
) -> tuple["torch.nn.Module", list[float]]:
    """A U-Net trained on a mix: each sample of a batch comes from the synthetic pairs with
    probability ``synthetic_share`` (else from the real images, masks with 255 = unlabelled
    ignored); cross-entropy with :func:`class_weights`. Returns the model (eval mode) and the
    mean loss per epoch.

    ``decision``: the weights balance the gradients, not the decision. A weighted cross-entropy
    learns logits of w_c·p(c | x), so where labels are uncertain — a hand-drawn boundary moved a
    pixel or two either way — its argmax moves every boundary towards the heavier class (the
    pores, weighted ~4× the median, came out at 1.4–1.75× their true area: ``weighted``).
    ``logit_adjusted`` shifts the head's bias by −log w_c (Menon et al. 2021), the argmax of
    p(c | x) where the logits are calibrated — after 250 steps they are not always (one U-Net in
    ~6 then drew pores at 0.6 of their area). ``fraction_matched`` starts there and moves the
    bias until the U-Net's argmax draws each class, on the pixels it trained on, at the area its
    labels give it (:func:`match_class_fractions`).

    ``amp``: the forward pass under bfloat16 autocast where the hardware makes it pay
    (:func:`matgen.util.bfloat16_autocast`), the loss in float32."""
    import torch
    import torch.nn.functional as F

    from ..models.unet import UNet

    if decision not in DECISIONS:
        raise InputError(f"segmentation.unet.decision {decision!r}: one of {', '.join(DECISIONS)}")
    if synthetic_share < 1 and len(real[0]) == 0:
        raise InputError("a mix with real data needs at least one real image")
    if synthetic_share > 0 and len(synthetic[0]) == 0:
        raise InputError("a mix with synthetic data needs synthetic pairs")
    dev = select_device(device)
    seed_everything(seed)
    model = UNet(
        int((real[0] if len(real[0]) else synthetic[0]).shape[1]), n_classes, width, depth
    ).to(dev, memory_format=torch.channels_last)  # oneDNN's faster layout: 1.1x on CPU
    weight = torch.from_numpy(class_weights([real[1], synthetic[1]], n_classes)).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    use_amp = bfloat16_autocast(dev, amp)
    rng = np.random.default_rng(seed)
    losses = []
    total_steps = epochs * steps_per_epoch
    for epoch in range(epochs):
        model.train()
        total = 0.0
        for step in range(steps_per_epoch):
            for group in opt.param_groups:  # cosine decay over the run
                group["lr"] = (
                    lr * 0.5 * (1 + np.cos(np.pi * (epoch * steps_per_epoch + step) / total_steps))
                )
            n_syn = int(rng.binomial(batch_size, synthetic_share))
            parts = []
            if batch_size - n_syn:
                parts.append(random_crops(*real, batch_size - n_syn, crop, rng))
            if n_syn:
                parts.append(random_crops(*synthetic, n_syn, crop, rng))
            x = torch.from_numpy(np.concatenate([p[0] for p in parts])).to(dev)
            m = torch.from_numpy(np.concatenate([p[1] for p in parts])).to(dev)
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=use_amp):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), m, weight=weight, ignore_index=UNLABELLED)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
        losses.append(total / steps_per_epoch)
    model.eval().requires_grad_(False)
    if decision != "weighted":
        with torch.no_grad():
            model.head.bias -= torch.log(weight)
    if decision == "fraction_matched":
        parts = [(1 - synthetic_share, real), (synthetic_share, synthetic)]
        shift = match_class_fractions(model, [(s, x, m) for s, (x, m) in parts if s > 0])
        with torch.no_grad():
            model.head.bias += shift.to(model.head.bias)
    return model, losses


DECISIONS = ("fraction_matched", "logit_adjusted", "weighted")


def match_class_fractions(
    model: "torch.nn.Module",
    parts: list[tuple[float, np.ndarray, np.ndarray]],
    iterations: int = 60,
    max_pixels: int = 2**21,
) -> "torch.Tensor":
    """A shift of a segmenter's output biases (n_classes,) under which its argmax labels each
    class on the labelled pixels of ``parts`` — (share, images (N, C, H, W), masks (N, H, W)),
    each part's fractions weighted by its share — at the fraction the masks give it: a damped
    fixed point, b += ½ log(f_labels / f_drawn). Classes absent from the masks keep their bias.
    At most ``max_pixels`` of each part (its first images) are read."""
    import torch

    from ..inference.segmentation import segmenter_logits

    dev = next(model.parameters()).device
    logits, labels, shares = [], [], []
    for share, images, masks in parts:
        k = max(1, max_pixels // int(np.prod(masks.shape[1:])))
        out = torch.cat(list(segmenter_logits(model, images[:k])))
        m = torch.from_numpy(np.asarray(masks[:k], np.int64)).to(dev)
        # (classes, pixels): each class's logits contiguous, so the argmax below is a few
        # elementwise passes (1.5x faster than over a trailing axis of 3)
        logits.append(out.permute(1, 0, 2, 3)[:, m != UNLABELLED].float().contiguous())
        labels.append(m[m != UNLABELLED])
        shares.append(share)
    n = logits[0].shape[0]

    def fractions(per_part: list["torch.Tensor"]) -> "torch.Tensor":
        return sum(s * torch.bincount(c, minlength=n)[:n].float() / max(len(c), 1)
                   for s, c in zip(shares, per_part))  # fmt: skip

    target = fractions(labels)
    shift = torch.zeros(n, device=dev)
    present = target > 0
    for _ in range(iterations):
        drawn = fractions([first_argmax(lg, shift) for lg in logits])
        step = 0.5 * torch.log(target / drawn.clamp_min(1e-6))
        shift = shift + torch.where(present, step, torch.zeros_like(step))
    return shift


def first_argmax(scores: "torch.Tensor", shift: "torch.Tensor") -> "torch.Tensor":
    """The index of the largest of ``scores[c] + shift[c]`` over the classes c of ``scores``
    (classes, pixels), the first where several tie: ``(scores.T + shift).argmax(1)``."""
    import torch

    best = scores[0] + shift[0]
    index = torch.zeros(scores.shape[1], dtype=torch.long, device=scores.device)
    for c in range(1, len(scores)):
        value = scores[c] + shift[c]
        index[value > best] = c
        best = torch.maximum(best, value)
    return index
