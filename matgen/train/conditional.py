"""Training of the polysilicon study's models on labelled images: the conditional VAE, the
conditional GAN and the CNN evaluator. Epoch-based, seeded, resumable (see
:class:`~matgen.train.loop.TrainingRun`); every model file stores its conditioning so that
sampling and evaluation use the same class order and E11 standardisation.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from ..data.conditions import conditioning_for, held_out_split, load_labelled
from ..errors import InputError
from ..inference.conditional import judge
from ..metrics.regression import regression_scores
from ..util import seed_everything, select_device
from .loop import TrainingRun


def _batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    order = rng.permutation(n)
    return [np.sort(order[i : i + batch_size]) for i in range(0, n - batch_size + 1, batch_size)]


def _cosine_lr(optimizer: Any, base: float, epoch: int, epochs: int) -> None:
    """Cosine decay from ``base`` to 0 over the run; a function of the epoch, so resumable."""
    import math

    for group in optimizer.param_groups:
        group["lr"] = base * 0.5 * (1 + math.cos(math.pi * epoch / epochs))


def _check_batch(n: int, batch_size: int, path: Any) -> None:
    if n < batch_size:
        raise InputError(f"{path}: {n} images, fewer than one batch ({batch_size})")


def train_vae(
    images_path: str | os.PathLike,
    table_path: str | os.PathLike,
    model_out: str | os.PathLike,
    log_out: str | os.PathLike,
    *,
    classes: list[str],
    seed: int = 0,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 1e-3,
    beta: float = 1.0,
    latent_dim: int = 8,
    width: int = 32,
    device: str = "auto",
    show_progress: bool = True,
) -> dict[str, Any]:
    """Fit the conditional VAE (class + E11) to all real images; log recon/KL per epoch."""
    import torch

    from ..models.vae import ConditionalVAE
    from .losses import vae_loss

    data = load_labelled(images_path, table_path, classes)
    _check_batch(len(data.images), batch_size, images_path)
    cond = conditioning_for(data, classes)
    dev = select_device(device)
    seed_everything(seed)
    cfg = dict(
        resolution=int(data.images.shape[-1]),
        img_channels=int(data.images.shape[1]),
        cond_dim=cond.dim,
        latent_dim=latent_dim,
        width=width,
    )
    model = ConditionalVAE(**cfg).to(dev)
    opt, run = TrainingRun.with_adam(
        model_out,
        log_out,
        model,
        cfg,
        lr=lr,
        epochs=epochs,
        device=dev,
        desc="cVAE",
        show_progress=show_progress,
    )
    x_all = torch.from_numpy(data.images)
    c_all = torch.from_numpy(cond.encode(data.class_index, data.target))
    rng = np.random.default_rng([seed, run.start])
    for epoch in run.steps():
        model.train()
        _cosine_lr(opt, lr, epoch, epochs)
        sums = np.zeros(3)
        batches = _batches(len(x_all), batch_size, rng)
        for idx in batches:
            x, c = x_all[idx].to(dev), c_all[idx].to(dev)
            logits, mu, logvar = model(x, c)
            loss, recon, kl = vae_loss(logits, x, mu, logvar, beta)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sums += [float(loss.detach()), float(recon.detach()), float(kl.detach())]
        sums /= len(batches)
        run.end_step(epoch + 1, dict(loss=sums[0], reconstruction=sums[1], kl=sums[2]))
        rng = np.random.default_rng([seed, epoch + 1])
    summary = {"epochs": epochs, "seconds": time.time() - run.started}
    run.finish("cvae", conditioning=cond.to_dict(), summary=summary)
    return summary


def train_cgan(
    images_path: str | os.PathLike,
    table_path: str | os.PathLike,
    model_out: str | os.PathLike,
    log_out: str | os.PathLike,
    *,
    classes: list[str],
    seed: int = 0,
    epochs: int = 60,
    batch_size: int = 64,
    lr_g: float = 2e-4,
    lr_d: float = 2e-4,
    z_dim: int = 64,
    width: int = 32,
    projection: bool = False,
    betas: tuple[float, float] = (0.0, 0.9),
    d_steps: int = 1,
    periodic: bool = False,
    latent_resolution: int = 0,
    d_refine_scales: int | None = None,
    augment_p: float = 0.0,
    augment_ops: tuple[str, ...] = ("translate", "cutout"),
    device: str = "auto",
    show_progress: bool = True,
) -> dict[str, Any]:
    """Fit the conditional GAN (spectral norm, hinge loss; ``projection``: projection
    discriminator) to all real images; ``d_steps`` D updates (fresh batches) per G update;
    ``periodic``: G pads circularly, for periodic microstructures; ``latent_resolution`` > 0:
    a fully convolutional G from a z noise map of that size (z_dim = channels × size²).

    ``augment_p`` > 0: every image D sees, real or generated, goes through the same random
    differentiable ``augment_ops`` (DiffAugment, Zhao et al. 2020; :mod:`matgen.data.ada`), each
    with that probability, so that D cannot memorise a few hundred images. Only operations that
    keep the (class, E11) label of a grain map belong here: translation and cutout do, and so does
    ``roll`` on periodic RVEs; rotation by 90° would swap E11 and E22, and a colour change would
    change the orientations."""
    import torch

    from ..data.ada import ALL_AUGMENTATIONS, augment, check_augment_ops
    from ..models.dcgan import ConditionalDiscriminator, ConditionalGenerator
    from .losses import hinge_d_loss, hinge_g_loss

    if d_steps < 1:
        raise InputError(f"gan: d_steps must be at least 1, got {d_steps}")
    if not 0.0 <= augment_p <= 1.0:
        raise InputError(f"gan: augment_p must be in [0, 1], got {augment_p}")
    ops = check_augment_ops(augment_ops, ALL_AUGMENTATIONS, "augment_ops")
    data = load_labelled(images_path, table_path, classes)
    _check_batch(len(data.images), batch_size, images_path)
    cond = conditioning_for(data, classes)
    dev = select_device(device)
    seed_everything(seed)
    res, ch = int(data.images.shape[-1]), int(data.images.shape[1])
    cfg = dict(
        resolution=res,
        img_channels=ch,
        cond_dim=cond.dim,
        z_dim=z_dim,
        width=width,
        periodic=periodic,
        latent_resolution=latent_resolution,
    )
    # channels-last: oneDNN's (and cuDNN's) faster layout for these few-channel convolutions,
    # 15-20 % per step on one CPU thread
    fmt = torch.channels_last
    G = ConditionalGenerator(**cfg).to(dev, memory_format=fmt)
    D = ConditionalDiscriminator(res, ch, cond.dim, width, projection, d_refine_scales).to(
        dev, memory_format=fmt
    )
    opt_g = torch.optim.Adam(G.parameters(), lr=lr_g, betas=tuple(betas))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr_d, betas=tuple(betas))
    run = TrainingRun(
        model_out,
        log_out,
        total=epochs,
        model_config=cfg,
        modules={"G": G, "D": D},
        states={"opt_g": opt_g, "opt_d": opt_d},
        device=dev,
        resume_config={**cfg, "d_projection": projection, "d_refine_scales": d_refine_scales},
        unit="epoch",
        desc="cGAN",
        show_progress=show_progress,
    )
    x_all = torch.from_numpy(data.images * 2 - 1)
    c_all = torch.from_numpy(cond.encode(data.class_index, data.target))
    rng = np.random.default_rng([seed, run.start])
    for epoch in run.steps():
        sums = np.zeros(2)
        batches = _batches(len(x_all), batch_size, rng)
        for b, idx in enumerate(batches):
            x, c = x_all[idx].to(dev, memory_format=fmt), c_all[idx].to(dev)
            update_g = (b + 1) % d_steps == 0
            # one G pass per step: D learns from it detached, G from it afterwards. G sees real
            # conditions, so the (class, E11) pairs it learns are the physical ones
            z = torch.randn(len(idx), z_dim, device=dev)
            with torch.set_grad_enabled(update_g):
                fake = G(z, c)
            loss_d = hinge_d_loss(
                D(augment(x, augment_p, ops), c), D(augment(fake.detach(), augment_p, ops), c)
            )
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            if not update_g:
                continue
            D.requires_grad_(False)  # G's step needs no gradients for D's weights
            loss_g = hinge_g_loss(D(augment(fake, augment_p, ops), c))
            D.requires_grad_(True)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            sums += [float(loss_d.detach()), float(loss_g.detach())]
        sums /= max(1, len(batches) // d_steps)
        run.end_step(epoch + 1, dict(loss_d=sums[0], loss_g=sums[1]))
        rng = np.random.default_rng([seed, epoch + 1])
    summary = {"epochs": epochs, "seconds": time.time() - run.started}
    run.finish("cgan", conditioning=cond.to_dict(), summary=summary)
    return summary


def train_evaluator(
    images_path: str | os.PathLike,
    table_path: str | os.PathLike,
    model_out: str | os.PathLike,
    log_out: str | os.PathLike,
    metrics_out: str | os.PathLike,
    *,
    classes: list[str],
    seed: int = 0,
    epochs: int = 15,
    batch_size: int = 64,
    lr: float = 1e-3,
    held_out_fraction: float = 0.2,
    width: int = 32,
    device: str = "auto",
    show_progress: bool = True,
) -> dict[str, float]:
    """Train the CNN judge (class + E11 heads) on real images only, holding out
    ``held_out_fraction`` of each class; writes its held-out accuracy, E11 MAE and R²."""
    import torch
    import torch.nn.functional as F

    from ..io import save_table
    from ..models.cnn import MicrostructureCNN

    data = load_labelled(images_path, table_path, classes)
    train_idx, test_idx = held_out_split(
        len(data.images), held_out_fraction, seed, data.class_index
    )
    _check_batch(len(train_idx), batch_size, images_path)
    cond = conditioning_for(data, classes)
    dev = select_device(device)
    seed_everything(seed)
    cfg = dict(n_classes=len(classes), img_channels=int(data.images.shape[1]), width=width)
    model = MicrostructureCNN(**cfg).to(dev)
    opt, run = TrainingRun.with_adam(
        model_out,
        log_out,
        model,
        cfg,
        lr=lr,
        epochs=epochs,
        device=dev,
        desc="CNN judge",
        show_progress=show_progress,
    )
    x_all = torch.from_numpy(data.images)
    y_all = torch.from_numpy(data.class_index)
    t_all = torch.from_numpy(
        ((data.target - cond.target_mean) / cond.target_std).astype(np.float32)
    )
    rng = np.random.default_rng([seed, run.start])
    for epoch in run.steps():
        model.train()
        _cosine_lr(opt, lr, epoch, epochs)  # settles the held-out accuracy at the end
        sums = np.zeros(2)
        batches = _batches(len(train_idx), batch_size, rng)
        for b in batches:
            idx = train_idx[b]
            logits, pred, _ = model(x_all[idx].to(dev))
            loss_c = F.cross_entropy(logits, y_all[idx].to(dev))
            loss_r = F.mse_loss(pred, t_all[idx].to(dev))
            opt.zero_grad(set_to_none=True)
            (loss_c + loss_r).backward()
            opt.step()
            sums += [float(loss_c.detach()), float(loss_r.detach())]
        sums /= len(batches)
        held = judge(model, data.images[test_idx], cond)
        acc = float((held["class_index"] == data.class_index[test_idx]).mean())
        run.end_step(epoch + 1, dict(class_loss=sums[0], e11_loss=sums[1], held_out_accuracy=acc))
        rng = np.random.default_rng([seed, epoch + 1])
    held = judge(model, data.images[test_idx], cond)
    metrics = {
        "n_train": len(train_idx),
        "n_held_out": len(test_idx),
        "accuracy": float((held["class_index"] == data.class_index[test_idx]).mean()),
        **regression_scores(held["target"], data.target[test_idx]),
        "e11_std_real": float(data.target.std()),
    }
    save_table(metrics_out, __import__("pandas").DataFrame([metrics]))
    run.finish("cnn", conditioning=cond.to_dict(), metrics=metrics, held_out=test_idx.tolist())
    return metrics
