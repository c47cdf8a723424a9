"""Training of the polysilicon study's models on labelled images: the conditional VAE, the
conditional GAN and the CNN evaluator. Epoch-based, seeded, resumable (see
:class:`~matgen.train.loop.TrainingRun`); every model file stores its conditioning so that
sampling and evaluation use the same class order and E11 standardisation.
"""

from __future__ import annotations

import copy
import math
import os
import time
from typing import Any

import numpy as np

from ..data.conditions import conditioning_for, held_out_split, load_labelled
from ..errors import InputError
from ..inference.conditional import judge
from ..metrics.regression import regression_scores
from ..util import seed_everything, select_device
from .loop import TrainingRun, ema_update, recalibrate_batch_norm


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


class _Critic:
    """The conditional discriminator of the cGAN and of the cVAE's adversarial term: spectral
    norm, hinge loss, ``width`` maps, optional projection head, DiffAugment with probability
    ``augment_p`` on every image it sees (only label-keeping ``augment_ops``: translation,
    cutout, ``roll`` on periodic RVEs; a rotation by 90° would swap E11 and E22, a colour change
    the orientations)."""

    def __init__(
        self,
        res: int,
        channels: int,
        cond_dim: int,
        dev: Any,
        *,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.0, 0.9),
        width: int = 32,
        projection: bool = False,
        refine_scales: int | None = None,
        augment_p: float = 0.0,
        augment_ops: tuple[str, ...] = ("translate", "cutout"),
    ) -> None:
        import torch

        from ..data.ada import ALL_AUGMENTATIONS, augment, check_augment_ops
        from ..models.dcgan import ConditionalDiscriminator
        from .losses import hinge_d_loss, hinge_g_loss

        if not 0.0 <= augment_p <= 1.0:
            raise InputError(f"augment_p must be in [0, 1], got {augment_p}")
        self.ops = check_augment_ops(augment_ops, ALL_AUGMENTATIONS, "augment_ops")
        self.p = augment_p
        self._augment, self._d_loss, self._g_loss = augment, hinge_d_loss, hinge_g_loss
        D = ConditionalDiscriminator(res, channels, cond_dim, width, projection, refine_scales)
        self.D = D.to(dev, memory_format=torch.channels_last)  # oneDNN's faster layout
        self.opt = torch.optim.Adam(self.D.parameters(), lr=lr, betas=tuple(betas))
        self.config = {"d_width": width, "d_projection": projection, "d_refine": refine_scales}

    def score(self, x: Any, c: Any) -> Any:
        return self.D(self._augment(x, self.p, self.ops), c)

    def step(self, real: Any, fake: Any, c: Any) -> float:
        """One D update on reals and (detached) fakes in [-1, 1]; returns its loss."""
        loss = self._d_loss(self.score(real, c), self.score(fake.detach(), c))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return float(loss.detach())

    def generator_loss(self, fake: Any, c: Any) -> Any:
        self.D.requires_grad_(False)  # G's step needs no gradients for D's weights
        loss = self._g_loss(self.score(fake, c))
        self.D.requires_grad_(True)
        return loss


class _GrainDensity:
    """Keeps each class's grain count within the real images' spread.

    The real images of class c are counted by matgen's grain segmentation (log-mean μ_c,
    log-sd σ_c). A generated map's count is estimated as its expected number of nuclei (the sum
    of presence probabilities: differentiable) times the measured / drawn ratio of its rendered
    image (the segmentation splits grains cut by the border and loses the smallest; the ratio
    carries that, without a gradient). The penalty relu(|log count − μ_c| − b_c)², with the band
    b_c = max(``tolerance`` σ_c, ``floor``), is zero inside the real spread, so the generator
    keeps its own variety there, while maps of a handful of grains, or of far too many, pay. The
    floor matters for classes of many grains, whose counts vary by a few %: a band that narrow
    is met most easily by a lattice of one nucleus per cell, which the term must not reward.

    ``class_mean`` > 0 also holds each class's *mean* log count at μ_c: inside the band a
    generator's class can sit anywhere, and the grain count per class (0.74-1.52x the real one
    on 3 seeds) moved with it. A batch holds only a few maps of a class, so the class's mean is
    a running mean (``momentum`` per batch) of the segmentation's log counts, carried in the
    resume checkpoint (``state_dict``); each map of class c is pushed by ``class_mean`` ×
    (running mean − μ_c), the gradient of that weight times the drift squared (the value
    added, so the log reads the drift)."""

    def __init__(
        self,
        images: np.ndarray,
        class_index: np.ndarray,
        n_classes: int,
        tolerance: float,
        floor: float = 0.0,
        class_mean: float = 0.0,
        momentum: float = 0.9,
    ) -> None:
        import torch

        from ..models.tessellation import expected_nuclei
        from ..synth.polysilicon import grain_count

        self._count, self._expected = grain_count, expected_nuclei  # imported once, not per step
        log_counts = np.log(np.maximum([grain_count(im[0]) for im in images], 1))
        per_class = [log_counts[np.asarray(class_index) == k] for k in range(n_classes)]
        self.mu = torch.tensor([c.mean() if len(c) else 0.0 for c in per_class])
        sd = torch.tensor([c.std() if len(c) else 1.0 for c in per_class])
        self.band = torch.clamp(tolerance * sd, min=floor)
        self.class_mean, self.momentum = float(class_mean), float(momentum)
        self.running = self.mu.clone()  # no drift known before the first batch

    @classmethod
    def of(
        cls,
        data: Any,
        n_classes: int,
        weight: float,
        tolerance: float,
        floor: float,
        class_mean: float = 0.0,
    ) -> "_GrainDensity | None":
        """The term for labelled images ``data``, or None when its ``weight`` is 0 (refused
        with a ``class_mean`` weight, which weighs within the term and would do nothing)."""
        if weight <= 0 and class_mean > 0:
            raise InputError("density_class_mean weighs within the density term: it needs "
                             "density_weight > 0")  # fmt: skip
        if weight <= 0:
            return None
        return cls(data.images, data.class_index, n_classes, tolerance, floor, class_mean)

    def state_dict(self) -> dict[str, Any]:
        return {"running": self.running.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.running = state["running"].clone()

    def penalty(self, fake: Any, seeds: Any, class_index: Any) -> Any:
        """Mean penalty over a batch of generated maps in [0, 1] (N, 1, H, W), their nuclei
        (N, m, 5, G, G) and class indices (N,)."""
        import torch

        images = fake.detach().float().cpu().numpy()
        measured = torch.tensor([float(self._count(im[0])) for im in images])
        drawn = (seeds[:, :, 2] > 0).sum((1, 2, 3)).clamp(min=1).float().cpu()
        ratio = (measured.clamp(min=0.5) / drawn).to(seeds.device)
        log_count = (self._expected(seeds) * ratio).clamp(min=1e-12).log()
        # a map drawn empty (every presence logit far below 0) is valued at half a grain, but
        # keeps the gradient of its log count: a clamp there would leave it none to recover by
        log_count = log_count + (log_count.clamp(min=math.log(0.5)) - log_count).detach()
        mu, band = self.mu.to(seeds.device)[class_index], self.band.to(seeds.device)[class_index]
        excess = (log_count - mu).abs() - band
        loss = torch.relu(excess).square().mean()
        if self.class_mean > 0:
            loss = loss + self.class_mean * self._class_drift(measured, log_count, class_index)
        return loss

    def _class_drift(self, measured: Any, log_count: Any, class_index: Any) -> Any:
        """Update the running per-class mean log counts with this batch's; the drift term."""
        k = class_index.cpu()
        for c in k.unique().tolist():
            batch_mean = measured[k == c].clamp(min=0.5).log().mean()
            self.running[c] = self.momentum * self.running[c] + (1 - self.momentum) * batch_mean
        drift = (self.running - self.mu).to(log_count.device)[class_index]
        push = 2 * drift * log_count
        return (push - push.detach() + drift.square()).mean()


def _density_states(density: _GrainDensity | None) -> dict[str, Any]:
    """The resume checkpoint's entry for the density term's running class means: only where
    the class-mean part is on, so checkpoints of runs without it still resume."""
    return {"density": density} if density is not None and density.class_mean > 0 else {}


class _PhysicsE11:
    """A generated map's E11 by the study's physics, against the E11 it was conditioned on.

    The map's grain pixels (above the segmentation's boundary level) give ψ through the
    rendering's grey encoding; their five trigonometric moments give the Voigt and Reuss
    estimates and their mean, the Hill E11 (:func:`~matgen.synth.polysilicon.e11_trig_basis`:
    the same number :func:`~matgen.synth.polysilicon.e11_of_image` computes, boundary pixels
    aside), differentiable through the renderer's soft path. The penalty is the squared error in
    units of the real E11 spread, plus, for each present nucleus whose grey lies outside the
    orientations' range (where ψ saturates and E11 has no gradient), (excess / 0.05)²: a
    nucleus 0.05 grey out of range costs what a 1 σ E11 miss does."""

    def __init__(self, target_mean: float, target_std: float, device: Any) -> None:
        import torch

        from ..synth.polysilicon import e11_trig_basis

        basis = e11_trig_basis()
        self.voigt = torch.tensor(basis["voigt"], dtype=torch.float64, device=device)
        self.reuss = torch.tensor(basis["reuss"], dtype=torch.float64, device=device)
        self.mean, self.std = target_mean, target_std

    def e11(self, maps: Any) -> Any:
        """(N,) Hill E11 (GPa) of maps in [0, 1] (N, 1, H, W)."""
        import torch

        from ..models.tessellation import orientation_fraction
        from ..synth.polysilicon import BOUNDARY_THRESHOLD, GREY_RANGE

        grain = (maps.detach() > BOUNDARY_THRESHOLD).double()
        empty = grain.sum((1, 2, 3), keepdim=True) == 0  # no grain pixel: read every pixel
        grain = torch.where(empty, torch.ones_like(grain), grain)
        psi = orientation_fraction(maps.double(), GREY_RANGE).clamp(0, 1) * math.pi
        f = torch.stack([torch.ones_like(psi), torch.cos(2 * psi), torch.sin(2 * psi),
                         torch.cos(4 * psi), torch.sin(4 * psi)], -1)  # fmt: skip
        moments = (f * grain[..., None]).sum((1, 2, 3)) / grain.sum((1, 2, 3)).clamp(min=1)[:, None]
        stiffness = torch.einsum("nk,kij->nij", moments, self.voigt)
        e_voigt = 1.0 / torch.linalg.inv(stiffness)[:, 0, 0]
        e_reuss = 1.0 / (moments @ self.reuss)
        return (e_voigt + e_reuss) / 2

    def penalty(self, maps: Any, seeds: Any, cond: Any) -> Any:
        """Mean penalty over generated maps (N, 1, H, W), their nuclei (N, m, 5, G, G) and
        condition vectors (N, classes + 1; last: standardised E11)."""
        miss = (self.e11(maps) - self.mean) / self.std - cond[:, -1].double()
        return (miss.square().mean() + self.outside_range(seeds)).float()

    def outside_range(self, seeds: Any) -> Any:
        """Σ (excess / 0.05)² over the present nuclei whose grey lies outside ψ's range, per map."""
        import torch

        from ..synth.polysilicon import GREY_RANGE

        lo, hi = GREY_RANGE
        grey = torch.sigmoid(seeds[:, :, 3])[seeds[:, :, 2] > 0]
        excess = torch.relu(lo - grey) + torch.relu(grey - hi)
        return (excess / 0.05).square().sum() / len(seeds)


def _shape_terms(
    maps: Any,
    seeds: Any,
    class_index: Any,
    density: _GrainDensity | None,
    density_weight: float,
    offset_weight: float,
    physics: tuple[_PhysicsE11, Any, float] | None = None,
    orientation: tuple[tuple[float, float], float] | None = None,
) -> tuple[Any, Any]:
    """G's terms beyond the critic's: the weighted sum of the grain-density penalty, of the
    nuclei's departure from a random scatter, with ``physics`` (the term, the maps'
    conditions, its weight) of the physics-E11 penalty and with ``orientation`` (the grey
    range of ψ, a weight) of the orientations' departure from random per class; and the
    density penalty alone (for the log)."""
    import torch

    from ..models.tessellation import offset_nonuniformity, orientation_nonuniformity_by_class

    loss_density = density.penalty(maps, seeds, class_index) if density else torch.zeros(())
    extra = density_weight * loss_density
    if offset_weight > 0:
        extra = extra + offset_weight * offset_nonuniformity(seeds)
    if physics is not None:
        term, cond, weight = physics
        extra = extra + weight * term.penalty(maps, seeds, cond)
    if orientation is not None:
        grey_range, weight = orientation
        extra = extra + weight * orientation_nonuniformity_by_class(seeds, class_index, grey_range)
    return extra, loss_density


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
    recon_sigma: float = 0.1,
    decoder: dict[str, Any] | None = None,
    adversarial: float = 0.0,
    discriminator: dict[str, Any] | None = None,
    density_weight: float = 0.0,
    density_tolerance: float = 2.0,
    density_floor: float = 0.0,
    density_class_mean: float = 0.0,
    offset_weight: float = 0.0,
    e11_weight: float = 0.0,
    orientation_weight: float = 0.0,
    precise_batch_norm: int = 0,
    device: str = "auto",
    show_progress: bool = True,
) -> dict[str, Any]:
    """Fit the conditional VAE (class + E11; a local latent map that places the nuclei and a
    global latent, :class:`~matgen.models.tessellation.TessellationVAE`, options in
    ``decoder``) to all real images: Gaussian likelihood of std ``recon_sigma``, β-weighted KL.

    ``adversarial`` > 0: a VAE-GAN (Larsen et al. 2016): the decoder's maps from prior draws, at
    the real images' conditions, also face a conditional discriminator (options in
    ``discriminator``, as the cGAN's D), with that weight on its hinge loss: the likelihood
    teaches what an image of this class looks like only through the encoder's posterior, the
    critic teaches it for the prior draws that sampling uses. The prior draws can also pay the
    cGAN's grain-density (``density_*``) and nucleus-scatter (``offset_weight``) terms, as in
    :func:`train_cgan` and like them weighted against the hinge loss (both scaled by
    ``adversarial``): where the critic wins, a VAE-GAN's density collapses (one grain an
    image) or its nuclei fall into a lattice, and the likelihood does not see prior draws; and
    (``e11_weight``) :class:`_PhysicsE11`, as the density term is weighted: the likelihood
    ties grey levels to the encoder's posterior, not to the E11 the prior draws ask for; and the
    cGAN's orientation term (``orientation_weight``, needs ``decoder.orientation_range``).
    ``precise_batch_norm`` > 0: the saved decoder's batch-norm statistics are those of that
    many batches of prior draws (:func:`recalibrate_prior_draws`)."""
    import torch

    from ..models.tessellation import TessellationVAE
    from .losses import vae_loss

    optional = dict(density_weight=density_weight, offset_weight=offset_weight,
                    e11_weight=e11_weight, density_class_mean=density_class_mean,
                    orientation_weight=orientation_weight)  # fmt: skip
    orientation = _check_shape_options("vae", orientation_weight, decoder, adversarial, optional)
    data = load_labelled(images_path, table_path, classes)
    _check_batch(len(data.images), batch_size, images_path)
    cond = conditioning_for(data, classes)
    dev = select_device(device)
    seed_everything(seed)
    res, ch = int(data.images.shape[-1]), int(data.images.shape[1])
    cfg = dict(resolution=res, img_channels=ch, cond_dim=cond.dim, **(decoder or {}))
    model = TessellationVAE(**cfg).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    modules, states = {"model": model}, {"opt": opt}
    critic = None
    if adversarial > 0:
        critic = _Critic(res, ch, cond.dim, dev, **(discriminator or {}))
        modules["D"], states["opt_d"] = critic.D, critic.opt
    density = _GrainDensity.of(data, len(classes), density_weight, density_tolerance, density_floor,
                               density_class_mean)  # fmt: skip
    states.update(_density_states(density))
    terms = {"adversarial": adversarial, **(critic.config if critic else {})}
    terms.update({k: w for k, w in optional.items() if w})  # old checkpoints resume
    run = TrainingRun(
        model_out,
        log_out,
        total=epochs,
        model_config=cfg,
        modules=modules,
        states=states,
        device=dev,
        resume_config={**cfg, **terms},
        unit="epoch",
        desc="cVAE",
        show_progress=show_progress,
    )
    x_all, c_all, k_all = _labelled_tensors(data, cond)
    physics = _PhysicsE11(cond.target_mean, cond.target_std, dev) if e11_weight else None
    rng = np.random.default_rng([seed, run.start])
    for epoch in run.steps():
        model.train()
        _cosine_lr(opt, lr, epoch, epochs)
        sums = np.zeros(5)
        batches = _batches(len(x_all), batch_size, rng)
        for idx in batches:
            x, c = x_all[idx].to(dev), c_all[idx].to(dev)
            recon, local, global_ = model(x, c)
            loss, nll, kl = vae_loss(recon, x, [local, global_], beta, recon_sigma)
            loss_d = loss_g = 0.0
            if critic is not None:
                z = torch.randn(len(idx), model.latent_dim, device=dev)
                eps = torch.randn(len(idx), *model.local_shape, device=dev)
                fake, seeds = model.generate(z, eps, c, return_seeds=True)
                loss_d = critic.step(x * 2 - 1, fake * 2 - 1, c)
                # the shape terms' weights are relative to the hinge loss, as the cGAN's
                e11_term = None if physics is None else (physics, c, e11_weight)
                extra, _ = _shape_terms(fake, seeds, k_all[idx].to(dev), density, density_weight,
                                        offset_weight, e11_term, orientation)  # fmt: skip
                adv = critic.generator_loss(fake * 2 - 1, c) + extra
                loss, loss_g = loss + adversarial * adv, float(adv.detach())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sums += [float(t.detach()) for t in (loss, nll, kl)] + [loss_d, loss_g]
        sums /= len(batches)
        names = ("loss", "reconstruction", "kl", "loss_d", "loss_g")[: 5 if critic else 3]
        run.end_step(epoch + 1, dict(zip(names, sums)))
        rng = np.random.default_rng([seed, epoch + 1])
    return _finish_generator(run, "cvae", model, c_all, batch_size, precise_batch_norm, seed, cond)


def recalibrate_prior_draws(
    model: Any, conditions: Any, batch_size: int, batches: int, seed: int
) -> None:
    """Precise batch-norm statistics (:func:`~matgen.train.loop.recalibrate_batch_norm`) for
    the decoder of a cVAE or cGAN ``model``, from ``batches`` batches of its prior draws at
    real ``conditions`` (rows drawn at random, seeded): the statistics of what sampling draws,
    which the training terms (grain density, E11) controlled in training mode."""
    import torch

    dev = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)

    def draw() -> None:
        c = conditions[torch.randint(len(conditions), (batch_size,), generator=gen)]
        z = torch.randn(batch_size, model.latent_dim, generator=gen)
        eps = torch.randn(batch_size, *model.local_shape, generator=gen)
        model.sample(z.to(dev), eps.to(dev), c.to(dev))

    recalibrate_batch_norm(model.decoder, draw, batches)


def _labelled_tensors(data: Any, cond: Any) -> tuple[Any, Any, Any]:
    """Images, condition vectors and class indices of labelled ``data`` as tensors."""
    import torch

    c_all = torch.from_numpy(cond.encode(data.class_index, data.target))
    k_all = torch.from_numpy(np.asarray(data.class_index, np.int64))
    return torch.from_numpy(data.images), c_all, k_all


def _finish_generator(
    run: TrainingRun, family: str, model: Any, c_all: Any, batch_size: int, batches: int,
    seed: int, cond: Any,
) -> dict[str, Any]:  # fmt: skip
    """Recalibrate the batch-norm statistics of ``model``'s prior draws over ``batches``
    batches (0: keep training's; :func:`recalibrate_prior_draws`), write the model file."""
    recalibrate_prior_draws(model, c_all, batch_size, batches, seed)
    summary = {"epochs": run.total, "seconds": time.time() - run.started}
    run.finish(family, conditioning=cond.to_dict(), summary=summary)
    return summary


def _check_shape_options(
    model: str,
    orientation_weight: float,
    generator: dict[str, Any] | None,
    adversarial: float | None = None,
    prior_terms: dict[str, float] | None = None,
) -> tuple[Any, float] | None:
    """The orientation term for :func:`_shape_terms`: (the orientations' grey range in the
    generator's options, ``orientation_weight``), None when the weight is 0. Refuses, in one line
    (``model``: its config key), an orientation term without that range and — the cVAE's
    ``prior_terms``, which act on the prior draws its critic sees — any of them on without a
    critic (``adversarial`` 0), where they would silently do nothing."""
    grey_range = (generator or {}).get("orientation_range")
    if orientation_weight > 0 and grey_range is None:
        part = "decoder" if model == "vae" else "generator"
        raise InputError(f"{model}: orientation_weight needs {part}.orientation_range")
    idle = [k for k, w in (prior_terms or {}).items() if w > 0]
    if adversarial is not None and adversarial <= 0 and idle:
        raise InputError(f"{model}: {', '.join(idle)} act on the prior draws the critic sees; "
                         "they need adversarial > 0")  # fmt: skip
    return (grey_range, orientation_weight) if orientation_weight > 0 else None


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
    generator: dict[str, Any] | None = None,
    width: int = 32,
    projection: bool = False,
    betas: tuple[float, float] = (0.0, 0.9),
    d_steps: int = 1,
    d_refine_scales: int | None = None,
    augment_p: float = 0.0,
    augment_ops: tuple[str, ...] = ("translate", "cutout"),
    ema_decay: float = 0.0,
    density_weight: float = 0.0,
    density_tolerance: float = 2.0,
    density_floor: float = 0.0,
    density_class_mean: float = 0.0,
    offset_weight: float = 0.0,
    e11_weight: float = 0.0,
    orientation_weight: float = 0.0,
    precise_batch_norm: int = 0,
    device: str = "auto",
    show_progress: bool = True,
) -> dict[str, Any]:
    """Fit the conditional GAN to all real images: G draws grain maps by placing nuclei
    (:class:`~matgen.models.tessellation.TessellationGenerator`, options in ``generator``); D
    (:class:`_Critic`) has ``width`` maps, a projection head with ``projection``, DiffAugment
    with ``augment_p`` and ``augment_ops``; ``d_steps`` D updates (fresh batches) per G update.
    ``ema_decay`` > 0: the saved G (what sampling uses) is the EMA of the trained weights.
    G's loss adds, each with its weight > 0: :class:`_GrainDensity` (``density_weight``; band
    ``density_tolerance`` real σ of a class's log grain count, ≥ ``density_floor``; class
    means held by ``density_class_mean``); ``tessellation.offset_nonuniformity``
    (``offset_weight``: nuclei at random, not in a lattice); :class:`_PhysicsE11`
    (``e11_weight``: the maps' E11 against their condition, as the cVAE's prior draws pay it);
    ``tessellation.orientation_nonuniformity_by_class`` (``orientation_weight``, with
    ``generator.orientation_range``). ``precise_batch_norm``: as :func:`train_vae`'s."""
    import torch

    from ..models.tessellation import TessellationGenerator

    if d_steps < 1:
        raise InputError(f"gan: d_steps must be at least 1, got {d_steps}")
    orientation = _check_shape_options("gan", orientation_weight, generator)
    data = load_labelled(images_path, table_path, classes)
    _check_batch(len(data.images), batch_size, images_path)
    cond = conditioning_for(data, classes)
    dev = select_device(device)
    seed_everything(seed)
    res, ch = int(data.images.shape[-1]), int(data.images.shape[1])
    cfg = dict(resolution=res, img_channels=ch, cond_dim=cond.dim, **(generator or {}))
    G = TessellationGenerator(**cfg).to(dev)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False) if ema_decay > 0 else G
    critic = _Critic(res, ch, cond.dim, dev, lr=lr_d, betas=betas, width=width,
                     projection=projection, refine_scales=d_refine_scales, augment_p=augment_p,
                     augment_ops=augment_ops)  # fmt: skip
    opt_g = torch.optim.Adam(G.parameters(), lr=lr_g, betas=tuple(betas))
    terms = dict(ema_decay=ema_decay, density_weight=density_weight, offset_weight=offset_weight)
    optional = {"e11_weight": e11_weight, "orientation_weight": orientation_weight,
                "density_class_mean": density_class_mean}  # fmt: skip
    terms.update({k: v for k, v in optional.items() if v})  # old checkpoints resume
    density = _GrainDensity.of(data, len(classes), density_weight, density_tolerance, density_floor,
                               density_class_mean)  # fmt: skip
    run = TrainingRun(
        model_out,
        log_out,
        total=epochs,
        model_config=cfg,
        modules={"G": G_ema, "D": critic.D, **({"G_train": G} if ema_decay > 0 else {})},
        states={"opt_g": opt_g, "opt_d": critic.opt, **_density_states(density)},
        device=dev,
        resume_config={**cfg, **critic.config, **terms},
        unit="epoch",
        desc="cGAN",
        show_progress=show_progress,
    )
    x_all, c_all, k_all = _labelled_tensors(data, cond)
    x_all = x_all * 2 - 1
    physics = _PhysicsE11(cond.target_mean, cond.target_std, dev) if e11_weight else None
    rng = np.random.default_rng([seed, run.start])
    for epoch in run.steps():
        sums = np.zeros(3)
        batches = _batches(len(x_all), batch_size, rng)
        for b, idx in enumerate(batches):
            x, c = x_all[idx].to(dev), c_all[idx].to(dev)
            update_g = (b + 1) % d_steps == 0
            # one G pass per step: D learns from it detached, G from it afterwards. G sees real
            # conditions, so the (class, E11) pairs it learns are the physical ones
            z = torch.randn(len(idx), G.latent_dim, device=dev)
            local = torch.randn(len(idx), *G.local_shape, device=dev)
            with torch.set_grad_enabled(update_g):
                maps, seeds = G(z, local, c, return_seeds=True)
                fake = maps * 2 - 1
            loss_d = critic.step(x, fake, c)
            if not update_g:
                continue
            e11_term = None if physics is None else (physics, c, e11_weight)
            extra, loss_density = _shape_terms(maps, seeds, k_all[idx].to(dev), density,
                                               density_weight, offset_weight, e11_term,
                                               orientation)  # fmt: skip
            loss_g = critic.generator_loss(fake, c) + extra
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            if ema_decay > 0:
                ema_update(G_ema, G, ema_decay)
            sums += [loss_d, float(loss_g.detach()), float(loss_density.detach())]
        sums /= max(1, len(batches) // d_steps)
        run.end_step(epoch + 1, dict(loss_d=sums[0], loss_g=sums[1], loss_density=sums[2]))
        rng = np.random.default_rng([seed, epoch + 1])
    return _finish_generator(run, "cgan", G_ema, c_all, batch_size, precise_batch_norm, seed, cond)


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
