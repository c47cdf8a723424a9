"""The training losses of every model family, as named functions of tensors.

GAN losses take discriminator outputs (logits or scores); regularisers take what they
differentiate. All return a 0-d tensor unless the docstring says otherwise.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..models.kernels import gaussian_blur


# --- StyleGAN2-ADA (Karras et al. 2020): non-saturating logistic loss, R1, path length
def logistic_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """D's logistic loss: softplus(D(fake)) + softplus(−D(real)), batch means."""
    return F.softplus(logits_fake).mean() + F.softplus(-logits_real).mean()


def nonsaturating_g_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """G's non-saturating logistic loss: softplus(−D(G(z))), batch mean."""
    return F.softplus(-logits_fake).mean()


def r1_penalty(logits_real: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """R1: squared norm of ∇ₓD(x) on reals (``real`` must require grad), batch mean; the
    graph is kept so the penalty can be back-propagated."""
    (grad,) = torch.autograd.grad(logits_real.sum(), real, create_graph=True)
    return grad.square().sum((1, 2, 3)).mean()


def path_lengths(fake: torch.Tensor, ws: torch.Tensor) -> torch.Tensor:
    """Per-sample Jacobian norms ‖J_wᵀ y‖ for a random image-space direction y, scaled by
    1/√(H·W) so the norm does not depend on the resolution; shape (N,), graph kept."""
    height, width = fake.shape[-2:]
    noise = torch.randn_like(fake) / math.sqrt(height * width)
    (grad,) = torch.autograd.grad((fake * noise).sum(), ws, create_graph=True)
    return grad.square().sum(2).mean(1).sqrt()


# --- CycleGAN (Zhu et al. 2017): least-squares GAN, cycle consistency, identity
def lsgan_loss(prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
    """Least-squares GAN loss: mean (D(x) − 1)² for real targets, D(x)² for fake ones."""
    target = torch.ones_like(prediction) if target_is_real else torch.zeros_like(prediction)
    return F.mse_loss(prediction, target)


def cycle_loss(reconstructed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """L1 between an image and its round trip through both generators."""
    return F.l1_loss(reconstructed.float(), original)


def identity_loss(mapped: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """L1 between a target-domain image and the generator's output for it (should be itself)."""
    return F.l1_loss(mapped.float(), original)


def observe_low_resolution(high: torch.Tensor, factor: int, psf_sigma: float) -> torch.Tensor:
    """The low-resolution instrument's view of a high-resolution image (N, C, H, W): a Gaussian
    point-spread blur of ``psf_sigma`` low-resolution pixels (``psf_sigma * factor`` high-
    resolution ones; reflecting edges), then the mean over each ``factor`` x ``factor`` block
    (a voxel integrates what falls in it); shape (N, C, H / factor, W / factor)."""
    sigma = psf_sigma * factor
    if sigma > 0:
        high = gaussian_blur(high, sigma)
    return F.avg_pool2d(high, factor) if factor > 1 else high


def forward_model_loss(
    translated: torch.Tensor,
    low: torch.Tensor,
    factor: int,
    psf_sigma: float,
    pore_level: float | None = None,
    softness: float = 0.05,
    pyramid: bool = False,
    levels: tuple[float, float] | None = None,
) -> torch.Tensor:
    """L1 between a low-resolution input and the low-resolution observation of its translation.

    The two instruments map structure to grey levels differently (backscatter yield vs
    attenuation), so the observation is first mapped onto ``low``'s grey scale by matching the
    batch's mean and standard deviation: one gain and offset per batch, shared by its tiles so
    that a tile with more pores must come out darker than one with fewer. The gain is positive
    by construction (inverted contrast costs, never fits) and, unlike a least-squares fit that
    would clip at zero, keeps a gradient from an uncorrelated start.

    With ``pore_level`` (a grey level of the translation's units) the translation is first
    segmented softly — solid where brighter than ``pore_level``, a logistic step ``softness``
    wide — so the instrument sees solid fractions: what a thresholded porosity of the
    translation measures is then what the low-resolution image says, texture aside.

    With ``levels`` (and ``pore_level``) the instrument is calibrated instead: its grey levels
    of pure pore and pure solid (``low``'s units), so a voxel reads ``pore + (solid − pore) ×
    solid fraction`` and each tile's porosity is pinned by what the instrument read, not left
    free up to one gain and offset per batch.

    With ``pyramid`` the L1 is also taken between 2 x 2, 4 x 4, ... block means of both, down to
    one value a tile, and summed: the input's noise averages out there, so an error shared by a
    whole region (a tile drawn with the typical porosity of the target domain rather than its
    own) costs what it is, where at the voxel scale it hides under the noise.
    """
    translated = translated.float()
    if pore_level is not None:
        translated = torch.sigmoid((translated - pore_level) / softness)
    observed = observe_low_resolution(translated, factor, psf_sigma)
    if levels is not None and pore_level is not None:
        seen = levels[0] + (levels[1] - levels[0]) * observed
    else:
        o = observed - observed.mean()
        seen = low.std() / (o.std() + 1e-6) * o + low.mean()
    loss = F.l1_loss(seen, low)
    while pyramid and min(low.shape[-2:]) >= 2:
        seen, low = F.avg_pool2d(seen, 2, ceil_mode=True), F.avg_pool2d(low, 2, ceil_mode=True)
        loss = loss + F.l1_loss(seen, low)
    return loss


def _sorted_w1(g: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """W1 of two sorted 1-D samples: mean |difference|, ``t``'s quantiles read at ``g``'s ranks
    where the counts differ."""
    if t.numel() != g.numel():
        idx = ((torch.arange(g.numel(), device=g.device) + 0.5) * (t.numel() / g.numel())).long()
        t = t[idx.clamp_(max=t.numel() - 1)]
    return (g - t).abs().mean()


def grey_histogram_loss(
    generated: torch.Tensor, target: torch.Tensor, split: float | None = None
) -> torch.Tensor:
    """1-D Wasserstein distance (W1) between the grey levels of two batches: the mean |difference|
    of their sorted pixel values (``target``'s quantiles read at ``generated``'s ranks where the
    pixel counts differ). Gradients flow to ``generated`` only.

    With ``split`` (a grey level: the pore/solid cut), the levels below and above it are matched
    separately and weighted by ``generated``'s pixel counts: each phase gets the target's grey
    levels, but not the target batch's pore fraction, which would pull every batch towards the
    target set's mean porosity whatever its input holds."""
    g = generated.float().flatten().sort().values
    t = target.detach().float().flatten().sort().values
    if split is None:
        return _sorted_w1(g, t)
    kg, kt = int((g < split).sum()), int((t < split).sum())
    total = g.new_zeros(())
    for gp, tp in ((g[:kg], t[:kt]), (g[kg:], t[kt:])):
        if gp.numel() and tp.numel():
            total = total + gp.numel() * _sorted_w1(gp, tp)
    return total / g.numel()


def pore_split_level(tiles: "np.ndarray") -> float:
    """Otsu's grey level between pores and solid of a tile stack with values in [0, 1], in the
    networks' [-1, 1] units (every tile, or 256 of them spread over the stack)."""
    from skimage.filters import threshold_otsu

    sample = np.asarray(tiles[:: max(1, len(tiles) // 256)], np.float32)
    return float(threshold_otsu(sample)) * 2 - 1


def smoothed_grey_histogram_loss(
    generated: torch.Tensor, target: torch.Tensor, smoothing: float
) -> torch.Tensor:
    """:func:`grey_histogram_loss` of the raw grey levels of two batches (N, C, H, W) plus that
    of their grey levels after a Gaussian blur of ``smoothing`` px (0: the raw term alone).

    Per-pixel detector noise hides each phase's own grey levels from the raw histogram: a
    generator can draw noise-free tiles with mottled pores and match it. Smoothed (as a
    segmentation smooths before it cuts pores), the noise averages away and the phases show."""
    loss = grey_histogram_loss(generated, target)
    if smoothing > 0:
        smooth = (observe_low_resolution(x, 1, smoothing) for x in (generated, target))
        loss = loss + grey_histogram_loss(*smooth)
    return loss


def soft_porosity(
    images: torch.Tensor, level: float, sharpness: float = 0.05, smoothing: float = 1.0
) -> torch.Tensor:
    """Differentiable pore fraction of each image of a batch (N, C, H, W), shape (N,): the mean of
    sigmoid((``level`` − x̃) / ``sharpness``), x̃ the greys after a Gaussian blur of ``smoothing`` px
    (as the morphology stage smooths before it cuts at its threshold); ``level`` and
    ``sharpness`` in the images' grey units.

    Only pixels within a few ``sharpness`` of the level carry gradient: a pore's dark core and the
    solid's interior do not, so matching this moves pore boundaries and leaves cores alone. It
    grows a pore by darkening the solid at its edge, which can end darker than the core."""
    images = images.float()
    if smoothing > 0:
        images = observe_low_resolution(images, 1, smoothing)
    return torch.sigmoid((level - images) / sharpness).mean(dim=(1, 2, 3))


def porosity_distribution_loss(
    generated: torch.Tensor,
    target_porosity: torch.Tensor,
    level: float,
    sharpness: float = 0.05,
    smoothing: float = 1.0,
) -> torch.Tensor:
    """W1 between the per-image soft pore fractions (:func:`soft_porosity`) of a batch and a
    sample of target pore fractions (1-D, any count: e.g. every real tile's, read at the batch's
    ranks), so both the mean porosity and its spread over tiles are matched. A fixed target
    sample, unlike a second small batch, adds no noise of its own to the gradient."""
    g = soft_porosity(generated, level, sharpness, smoothing).sort().values
    return _sorted_w1(g, target_porosity.detach().float().flatten().sort().values)


def solid_under_pores_loss(
    solid: torch.Tensor, pore: torch.Tensor, sigma: float = 3.0, margin: float = 0.0
) -> torch.Tensor:
    """How far a two-phase generator's solid grey under its pores strays from the solid round
    them: the pore-weighted mean of (solid − its local mean over the surrounding solid)², the
    local mean a Gaussian window of ``sigma`` px (cut at 2 ``sigma``; reflecting edges) over the
    solid weighted by 1 − ``pore``. ``solid`` (N, 1, H, W) is the solid channel in grey units,
    ``pore`` the blend weight σ(logit) in [0, 1], same shape. ``margin`` > 0 (grey units): only
    the part of a difference beyond it counts, so the solid under a pore may vary as the solid's
    own texture does and only excursions beyond it (a crescent) pay.

    Where a pore is certain the solid channel is hidden from D and drifts; the pore's edge band,
    where the blend is partial, lets it through as bright crescents (docs/porous.md, "Pores as
    a phase"). The pore weight and the local mean are constants: only the solid under the
    pores moves, towards what a continued solid would be, and the pores stay where G puts them."""
    solid, pore = solid.float(), pore.float().detach()
    radius = max(1, int(round(2 * sigma)))
    around = 1 - pore
    local = gaussian_blur(solid.detach() * around, sigma, radius) / (
        gaussian_blur(around, sigma, radius) + 1e-3
    )
    excess = solid - local
    if margin > 0:
        excess = F.relu(excess.abs() - margin)
    return (excess**2 * pore).sum() / (pore.sum() + 1e-6)


# --- conditional GAN (polysilicon): hinge loss
def hinge_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """D's hinge loss on scores of reals and fakes."""
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def hinge_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """G's hinge loss: −D(G(z)), batch mean."""
    return -fake.mean()


# --- VAE and VQ-VAE
def vae_loss(
    recon: torch.Tensor,
    x: torch.Tensor,
    posteriors: list[tuple[torch.Tensor, torch.Tensor]],
    beta: float = 1.0,
    sigma: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, reconstruction, KL) per image: Gaussian negative log-likelihood (std ``sigma``, up
    to a constant) of x given the reconstruction in [0, 1], summed over pixels, plus β · the KL
    of every latent's posterior (mu, logvar) from N(0, I)."""
    nll = (recon - x).square().sum() / (2 * sigma**2 * len(x))
    kl = sum(-0.5 * torch.sum(1 + lv - mu.square() - lv.exp()) for mu, lv in posteriors) / len(x)
    return nll + beta * kl, nll, kl


def vqvae_loss(
    recon: torch.Tensor,
    logits: torch.Tensor,
    image: torch.Tensor,
    mask: torch.Tensor,
    commitment: torch.Tensor,
    beta: float = 0.25,
    ignore_index: int = 255,
    image_weight: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, image MSE, mask cross-entropy); unlabelled mask pixels are ignored.
    ``image_weight`` scales the MSE against the cross-entropy: grey levels in [0, 1] make the
    MSE ~100× smaller than the cross-entropy, so at weight 1 the codes favour the mask."""
    mse = F.mse_loss(recon, image)
    ce = F.cross_entropy(logits, mask.long(), ignore_index=ignore_index)
    return image_weight * mse + ce + beta * commitment, mse, ce


def vacancy_detection_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    pos_weight: torch.Tensor,
    type_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Vacancy detector loss. Channel 0 of ``logits`` (B, 1 + C, H, W) is the any-type vacancy
    heatmap: binary cross-entropy against ``target[:, :1]`` (Gaussians) with the rare positive
    pixels up-weighted by ``pos_weight``. With C > 1 types, channels 1.. are type logits:
    cross-entropy (class weights ``type_weight``) against the type index in ``target[:, 1]``,
    only on the pixels next to a vacancy (index ≥ 0; −1 elsewhere); and next to a vacancy the
    heatmap's positive weight is scaled by ``type_weight / type_weight.min()``, so that a rare
    type counts in the heatmap as much as the commonest one."""
    if logits.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight)
    index = target[:, 1:2].round().long()
    weight = pos_weight * torch.ones_like(target[:, :1])
    if type_weight is not None:
        balance = type_weight / type_weight.min()
        weight = torch.where(index >= 0, pos_weight * balance[index.clamp(min=0)], weight)
    loss = F.binary_cross_entropy_with_logits(logits[:, :1], target[:, :1], pos_weight=weight)
    if (index >= 0).any():
        loss = loss + F.cross_entropy(
            logits[:, 1:], index[:, 0], weight=type_weight, ignore_index=-1
        )
    return loss
