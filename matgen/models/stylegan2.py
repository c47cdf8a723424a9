"""StyleGAN2 generator and residual discriminator (Karras et al., CVPR 2020), from the paper.

Sized by ``resolution`` (a power of two) and a channel budget: the feature maps at resolution r
have ``min(channel_base // r, channel_max)`` channels, so the same code builds a 64² model with a
few hundred thousand parameters for CPU runs and the paper's 1024² model (channel_base 32768,
channel_max 512) for GPUs. All layers use equalised learning rate (weights stored at unit variance,
scaled at run time by He's constant) as in the paper. Up- and downsampling use the [1, 3, 3, 1]
binomial filter. Pure PyTorch: no custom CUDA kernels to build.

Generator: mapping network z → w (``n_mapping`` layers, lr multiplier 0.01) → one w per layer
(``num_ws``) → synthesis from a learned 4×4 constant through modulated/demodulated 3×3 convs with
per-pixel noise, with skip-connected 1×1 "toRGB" outputs summed across resolutions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .kernels import gaussian_blur, gaussian_taps

_BLUR = torch.tensor([1.0, 3.0, 3.0, 1.0])
_ACT_GAIN = math.sqrt(2.0)  # keeps unit variance through leaky ReLU(0.2)


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at a given resolution."""
    return max(1, min(channel_base // resolution, channel_max))


def check_resolution(resolution: int) -> int:
    """``log2(resolution)``; raises ValueError unless it is a power of two ≥ 4."""
    log2 = int(round(math.log2(resolution))) if resolution > 0 else 0
    if resolution < 4 or 2**log2 != resolution:
        raise ValueError(f"resolution {resolution} is not a power of two >= 4")
    return log2


def blur(x: torch.Tensor, pad: tuple[int, int], stride: int = 1, gain: float = 1.0) -> torch.Tensor:
    """Depthwise [1,3,3,1] ⊗ [1,3,3,1] filter with (before, after) zero padding."""
    c = x.shape[1]
    k = torch.outer(_BLUR, _BLUR).to(x)
    k = (k / k.sum() * gain).expand(c, 1, 4, 4)
    if pad[0] == pad[1]:  # the convolution's own zero padding is about twice as fast as F.pad
        return F.conv2d(x, k, stride=stride, padding=pad[0], groups=c)
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    return F.conv2d(x, k, stride=stride, groups=c)


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """2× upsampling; bilinear (align_corners=False) is the [1,3,3,1] filter away from the edges."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class EqualLinear(nn.Module):
    """Fully connected layer with equalised learning rate and optional leaky ReLU."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return F.leaky_relu(out, 0.2) * _ACT_GAIN if self.activation else out


class EqualConv2d(nn.Module):
    """Convolution with equalised learning rate; ``down=True`` blurs then strides by 2."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        bias: bool = True,
        activation: bool = False,
        down: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.scale = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.kernel, self.activation, self.down = kernel, activation, down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.scale
        if self.down:  # FIR padding so that the output is exactly half the input
            p = 2 + self.kernel - 1
            x = blur(x, ((p + 1) // 2, p // 2))
            x = F.conv2d(x, w, self.bias, stride=2)
        else:
            x = F.conv2d(x, w, self.bias, padding=self.kernel // 2)
        return F.leaky_relu(x, 0.2) * _ACT_GAIN if self.activation else x


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution, optionally demodulated and 2× upsampling.

    Modulation scales the input feature maps by the per-sample style s (equivalent to scaling the
    weights, and batch-friendly: one shared convolution instead of a grouped one); demodulation
    rescales each output map by 1/sqrt(Σ (w·s)²), which restores unit variance without
    instance normalisation and so without its droplet artefacts.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        w_dim: int,
        demodulate: bool = True,
        up: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.scale = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)
        self.kernel, self.demodulate, self.up = kernel, demodulate, up

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w)
        weight = self.weight * self.scale
        x = x * styles.to(x.dtype)[:, :, None, None]
        if self.up:  # transposed conv (stride 2) then blur: output exactly 2H x 2W
            x = F.conv_transpose2d(x, weight.transpose(0, 1).to(x.dtype), stride=2)
            x = blur(x, (1, 1), gain=4.0)
        else:
            x = F.conv2d(x, weight.to(x.dtype), padding=self.kernel // 2)
        if self.demodulate:
            demod = torch.rsqrt(styles.square() @ weight.square().sum((2, 3)).t() + 1e-8)
            x = x * demod.to(x.dtype)[:, :, None, None]
        return x


class StyledConv(nn.Module):
    """Modulated conv + per-pixel noise (learned strength) + bias + leaky ReLU."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        w_dim: int,
        resolution: int,
        up: bool = False,
        use_noise: bool = True,
        noise_lr_mul: float = 1.0,
        log_noise_strength: float = 0.0,
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, 3, w_dim, up=up)
        self.use_noise = use_noise
        # stored / noise_lr_mul, used x noise_lr_mul: Adam moves a scalar by about lr a step
        # whatever its gradient, so this is the strength's own learning-rate multiplier.
        # log_noise_strength > 0: the strength is exp(stored), from that value: Adam's steps
        # then scale it instead of shifting it, so it cannot wander through zero (a tile's
        # detector noise vanishing with it)
        self.log_noise = log_noise_strength > 0
        start = math.log(log_noise_strength) / noise_lr_mul if self.log_noise else 0.0
        self.noise_strength = nn.Parameter(torch.tensor(start))
        self.noise_lr_mul = noise_lr_mul
        self.bias = nn.Parameter(torch.zeros(out_ch))
        # Fixed noise for "constant noise" sampling: a tile is then a function of its z alone.
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))

    def strength(self) -> torch.Tensor:
        """The noise strength as used (a scalar)."""
        used = self.noise_strength * self.noise_lr_mul
        return used.exp() if self.log_noise else used

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        noise_mode: str = "random",
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = self.conv(x, w)
        if not self.use_noise:
            noise_mode, noise = "none", None
        if noise is None and noise_mode == "random":
            noise = torch.randn(
                x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype
            )
        elif noise is None and noise_mode == "const":
            noise = self.noise_const.to(x.dtype)
        if noise is not None:
            x = x + noise * self.strength().to(x.dtype)
        return F.leaky_relu(x + self.bias.to(x.dtype)[None, :, None, None], 0.2) * _ACT_GAIN


class ToRGB(nn.Module):
    """1×1 modulated conv (no demodulation) to image channels, added to the upsampled skip."""

    def __init__(self, in_ch: int, img_channels: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, img_channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(img_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        out = self.conv(x, w) + self.bias.to(x.dtype)[None, :, None, None]
        return out if skip is None else out + upsample2x(skip)


class MappingNetwork(nn.Module):
    """z → w: pixel-normalised z through ``n_layers`` fully connected layers (lr × 0.01)."""

    def __init__(self, z_dim: int, w_dim: int, n_layers: int, lr_mul: float = 0.01) -> None:
        super().__init__()
        dims = [z_dim] + [w_dim] * n_layers
        self.layers = nn.Sequential(
            *[
                EqualLinear(a, b, lr_mul=lr_mul, activation=True)
                for a, b in zip(dims[:-1], dims[1:])
            ]
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8)
        return self.layers(z)


ARCHITECTURES = ("skip", "orig")
_PORE_LOGIT_GAIN = 4.0

# The noise maps G draws after its layers', in this order, each by its constant map's buffer
# (registered only where the option is on): what ``synthesis``'s ``noises`` carries after the
# layers' maps, and what :func:`~matgen.inference.stylegan2.latents_from_seeds` draws per tile.
_EXTRA_NOISE = {
    "detector": "detector_noise_const",
    "outline": "pore_outline_noise_const",
    "crack": "pore_crack_noise_const",
}


class Generator(nn.Module):
    """StyleGAN2 generator with skip outputs (``architecture="orig"``: the last layer's output
    alone); images in roughly [-1, 1], (N, img_channels, R, R); with ``pore_phase_grey`` a
    two-phase image, the solid's grey blended towards that grey by a pore logit."""

    def __init__(
        self,
        resolution: int,
        z_dim: int = 512,
        w_dim: int = 512,
        n_mapping: int = 8,
        channel_base: int = 32768,
        channel_max: int = 512,
        img_channels: int = 1,
        noise_min_resolution: int = 0,
        noise_max_resolution: int = 0,
        noise_lr_mul: float = 1.0,
        log_noise_strength: float = 0.0,
        detector_noise_sd: float = 0.0,
        architecture: str = "skip",
        pore_floor: float | None = None,
        pore_floor_width: float = 0.05,
        pore_phase_grey: float | None = None,
        pore_outline_noise_sigma: float = 0.0,
        pore_outline_fixed_strength: float | None = None,
        pore_crack_strength: float = 0.0,
        pore_crack_width: float = 0.6,
        psf_sigma: float = 0.0,
        pore_rim_length: float = 0.0,
    ) -> None:
        super().__init__()
        log2 = check_resolution(resolution)
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture {architecture!r}: one of {', '.join(ARCHITECTURES)}")
        # "orig": the image from the last layer's toRGB alone (StyleGAN2 paper, Fig. 7a). With
        # skip outputs the 16-32 px outputs draw a pore as a soft dark blob and the 64-px one
        # sharpens its edge by overshoot: a bright halo (docs/porous.md, "Where the halos come
        # from"). The lower toRGBs stay (unused), so the weights are drawn as with skips.
        self.architecture = architecture
        self.resolution, self.z_dim, self.w_dim = resolution, z_dim, w_dim
        self.img_channels = img_channels
        # pore_phase_grey: a two-phase image, as a backscatter SEM of a porous rock is: the toRGBs
        # draw the solid's grey and one more channel, a pore logit; a pixel is the solid's grey
        # where the logit is low and this grey (an empty pore's, measured on the real tiles)
        # where it is high. An edge is sharpened in the logit, where the sigmoid saturates,
        # instead of by an overshoot in the image: the halos (docs/porous.md, "Pores as a phase")
        self.pore_phase_grey = None if pore_phase_grey is None else float(pore_phase_grey)
        out_ch = img_channels + (self.pore_phase_grey is not None)
        ch = [channels_at(2**i, channel_base, channel_max) for i in range(log2 + 1)]
        self.mapping = MappingNetwork(z_dim, w_dim, n_mapping)
        self.const = nn.Parameter(torch.randn(1, ch[2], 4, 4))
        # per-pixel noise only from noise_min_resolution up to noise_max_resolution (0: the
        # output's): on a few thousand tiles G places the pores with one layer's noise instead
        # of by z, and which layer sets their size (docs/porous.md, "Which noise draws the pores")
        top = noise_max_resolution or resolution
        noisy = [noise_min_resolution <= 2**i <= top for i in range(log2 + 1)]
        noise = dict(noise_lr_mul=noise_lr_mul, log_noise_strength=log_noise_strength)
        self.conv1 = StyledConv(ch[2], ch[2], w_dim, 4, use_noise=noisy[2], **noise)
        self.to_rgb1 = ToRGB(ch[2], out_ch, w_dim)
        self.convs, self.to_rgbs = nn.ModuleList(), nn.ModuleList()
        for i in range(3, log2 + 1):
            self.convs.append(
                StyledConv(ch[i - 1], ch[i], w_dim, 2**i, up=True, use_noise=noisy[i], **noise)
            )
            self.convs.append(StyledConv(ch[i], ch[i], w_dim, 2**i, use_noise=noisy[i], **noise))
            self.to_rgbs.append(ToRGB(ch[i], out_ch, w_dim))
        self.num_ws = 2 * log2 - 2
        # Running mean of w: the centre that truncation pulls towards.
        self.register_buffer("w_avg", torch.zeros(w_dim))
        # detector_noise_sd > 0: white noise of that fixed sd on the output image — the
        # microscope's detector noise, measured on the real images, as an observation model. G
        # then draws the signal only; learnt per-layer strengths that random-walk through zero
        # lost it (docs/porous.md). Created last, so without it the weights are drawn as before.
        self.detector_noise_sd = float(detector_noise_sd)
        # pore_floor: the signal is bounded below, as a backscatter image is by the grey of an
        # empty pore; a soft floor (softplus, ``pore_floor_width`` wide) so a skip sum that
        # overshoots under it draws a flat pore instead of a black core. Measured, not taken: G
        # then drew bright specks beside its pores (docs/porous.md, "A floor under the
        # generator's signal")
        self.pore_floor = None if pore_floor is None else float(pore_floor)
        self.pore_floor_width = float(pore_floor_width)
        if self.detector_noise_sd > 0:
            self.register_buffer(
                "detector_noise_const", torch.randn(1, img_channels, resolution, resolution)
            )
        self._init_pore_fields(
            resolution,
            w_dim,
            pore_outline_noise_sigma,
            pore_outline_fixed_strength,
            pore_crack_strength,
            pore_crack_width,
        )
        # psf_sigma > 0 (px): the drawn image is blurred by a Gaussian point-spread function of
        # that sigma before the detector noise — the microscope's probe, as an observation model.
        # Without it G drew edges sharper than the SEM's (+0.15-0.20 decades of power above 0.4
        # cycles/px with the outline or crack fields; docs/porous.md, "The probe's blur, ...")
        self.psf_sigma = float(psf_sigma)
        # pore_rim_length > 0 (px, two-phase only): the SEM's edge effect — the solid next to a
        # pore wall is brighter, as more electrons escape there — drawn from the pore weights:
        # the solid gets a learnt strength (from 0) times the pores' share of an exp(-r / length)
        # neighbourhood, a ring all the way round every pore. Measured, not taken: G takes the
        # ring up but keeps drawing bright specks on one side of its pores in the solid's channel
        # (docs/porous.md, "The probe's blur, and the SEM's edge effect")
        self.pore_rim_length = float(pore_rim_length)
        if self.pore_rim_length > 0:
            if self.pore_phase_grey is None:
                raise ValueError("pore_rim_length: needs a two-phase output")
            radius = max(1, math.ceil(4 * self.pore_rim_length))
            if radius >= resolution:  # the tile is mirrored at its edges by this many px
                raise ValueError(f"pore_rim_length {pore_rim_length}: too long for {resolution} px")
            self.pore_rim_strength = nn.Parameter(torch.zeros(()))
            axis = torch.arange(-radius, radius + 1, dtype=torch.float32)
            r = (axis.view(-1, 1).square() + axis.view(1, -1).square()).sqrt()
            kernel = torch.exp(-r / self.pore_rim_length)
            self.register_buffer("pore_rim_kernel", (kernel / kernel.sum())[None, None])

    def _init_pore_fields(
        self,
        resolution: int,
        w_dim: int,
        pore_outline_noise_sigma: float,
        pore_outline_fixed_strength: float | None,
        pore_crack_strength: float,
        pore_crack_width: float,
    ) -> None:
        """The outline field's and the crack's buffers and parameters, where their options are
        on (two-phase only), drawn in this order after every other weight."""
        # pore_outline_noise_sigma > 0 (px, two-phase only): a unit-variance Gaussian random
        # field of that correlation length, times a learnt strength (from 0) or a fixed one
        # (``pore_outline_fixed_strength``), is added to the pore logit. Where the logit is far
        # from 0 it changes nothing; along a pore's outline it bends the outline at the pores'
        # own scale, which the per-pixel noise (up to 16 px) cannot without placing pores itself
        # (docs/porous.md, "How round the pores are"). Created last, so without it the weights
        # are drawn as before.
        self.pore_outline_noise_sigma = float(pore_outline_noise_sigma)
        if pore_outline_fixed_strength is not None and self.pore_outline_noise_sigma <= 0:
            raise ValueError("pore_outline_fixed_strength: needs pore_outline_noise_sigma > 0")
        if self.pore_outline_noise_sigma > 0:
            if self.pore_phase_grey is None:
                raise ValueError("pore_outline_noise_sigma: needs a two-phase output")
            if pore_outline_fixed_strength is None:  # learnt: G sets how far outlines bend
                self.pore_outline_strength = nn.Parameter(torch.zeros(()))
            else:  # a buffer: the same state-dict key, but D cannot talk G out of it
                strength = torch.tensor(float(pore_outline_fixed_strength))
                self.register_buffer("pore_outline_strength", strength)
            # scaled so that unit white noise blurred by it along both axes keeps unit variance
            kernel = gaussian_taps(self.pore_outline_noise_sigma)
            kernel = kernel / kernel.square().sum().sqrt()
            self.register_buffer("pore_outline_kernel", kernel)
            # the white noise is drawn the kernel's width larger than the tile, so the field is
            # as strong at the tile's edges as inside (no padding)
            side = resolution + kernel.numel() - 1
            self.register_buffer("pore_outline_noise_const", torch.randn(1, 1, side, side))
        # pore_crack_strength > 0 (two-phase only): a micro-fracture cut by the section is a
        # straight pore line 1-2 px wide, and no layer draws one (docs/porous.md, "Cracks"). Each
        # tile gets a straight line at a random angle and offset (from its noise), a Gaussian
        # profile ``pore_crack_width`` px wide, added to the pore logit at this fixed strength
        # times a gate that w sets: whether a tile shows its crack is learnt, the line's place is
        # noise. Created last, so without it the weights are drawn as before.
        self.pore_crack_strength = float(pore_crack_strength)
        self.pore_crack_width = float(pore_crack_width)
        if self.pore_crack_strength > 0:
            if self.pore_phase_grey is None:
                raise ValueError("pore_crack_strength: needs a two-phase output")
            self.pore_crack_gate = EqualLinear(w_dim, 1)
            self.register_buffer("pore_crack_noise_const", torch.randn(1, 1, 2))

    def map(
        self, z: torch.Tensor, truncation_psi: float = 1.0, track_w_avg: bool = False
    ) -> torch.Tensor:
        """z (N, z_dim) → w (N, w_dim), optionally truncated towards the mean w."""
        w = self.mapping(z)
        if track_w_avg:
            self.w_avg.copy_(w.detach().float().mean(0).lerp(self.w_avg, 0.995))
        if truncation_psi != 1.0:
            w = self.w_avg.to(w.dtype).lerp(w, truncation_psi)
        return w

    def extra_noise_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of the noise after the layers' maps in ``synthesis``'s ``noises``: the detector
        noise's (C, R, R), the pore outlines' (1, R', R'), the crack's (1, 2), each where G has
        it."""
        return [tuple(getattr(self, _EXTRA_NOISE[n]).shape[1:]) for n in self._extra_noise_names()]

    def synthesis(
        self,
        ws: torch.Tensor,
        noise_mode: str = "random",
        noises: list[torch.Tensor] | None = None,
        return_phases: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ws (N, num_ws, w_dim) → images. ``noise_mode``: random, const or none. ``noises``: one
        map per layer, then optionally those of :meth:`extra_noise_shapes`.
        ``return_phases`` (two-phase only): also the solid's grey and the pore weight σ(4ℓ)."""
        if return_phases and self.pore_phase_grey is None:
            raise ValueError("return_phases: the generator draws no phases (pore_phase_grey)")
        layers = [self.conv1, *self.convs]
        noises = list(noises) if noises is not None else [None] * len(layers)
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        x = self.conv1(x, ws[:, 0], noise_mode, noises[0])
        skips = self.architecture == "skip"
        skip = self.to_rgb1(x, ws[:, 1], None) if skips else None
        i = 1
        for k, to_rgb in enumerate(self.to_rgbs):
            x = self.convs[2 * k](x, ws[:, i], noise_mode, noises[2 * k + 1])
            x = self.convs[2 * k + 1](x, ws[:, i + 1], noise_mode, noises[2 * k + 2])
            if skips or k == len(self.to_rgbs) - 1:
                skip = to_rgb(x, ws[:, i + 2], skip)
            i += 2
        extra = noises[len(layers) :]
        given = dict(zip(self._extra_noise_names(), extra)) if extra else {}
        if self.pore_phase_grey is not None:
            solid, logit = skip[:, : self.img_channels], skip[:, self.img_channels :]
            if self.pore_outline_noise_sigma > 0 and noise_mode != "none":
                logit = logit + self._outline_field(given.get("outline"), noise_mode, logit)
            if self.pore_crack_strength > 0 and noise_mode != "none":
                logit = logit + self._crack_field(given.get("crack"), noise_mode, logit, ws)
            # ×4: a toRGB's output starts within about ±1; the pores' logits must reach ±4
            pore = torch.sigmoid(_PORE_LOGIT_GAIN * logit)
            if self.pore_rim_length > 0:
                solid = solid + self._rim(pore)
            skip = solid + pore * (self.pore_phase_grey - solid)
            phases = (solid, pore)
        if self.psf_sigma > 0:  # separable, mirrored at the tile's edges
            skip = gaussian_blur(skip, self.psf_sigma)
        if self.pore_floor is not None:
            floor = self.pore_floor
            skip = floor + F.softplus(skip - floor, beta=1.0 / self.pore_floor_width)
        if self.detector_noise_sd > 0 and noise_mode != "none":
            noise = given.get("detector")
            if noise is None:
                noise = (
                    torch.randn_like(skip) if noise_mode == "random" else self.detector_noise_const
                )
            skip = skip + self.detector_noise_sd * noise.to(skip.dtype)
        return (skip, *phases) if return_phases else skip

    def _rim(self, pore: torch.Tensor) -> torch.Tensor:
        """The edge effect's brightening (N, 1, R, R) of the solid: the learnt strength times the
        pore weights' share of each pixel's exp(−r / ``pore_rim_length``) neighbourhood (mirrored
        at the tile's edges)."""
        kernel = self.pore_rim_kernel.to(pore.dtype)
        r = (kernel.shape[-1] - 1) // 2
        share = F.conv2d(F.pad(pore, (r, r, r, r), mode="reflect"), kernel)
        return self.pore_rim_strength.to(pore.dtype) * share

    def _extra_noise_names(self) -> list[str]:
        """The names of :meth:`extra_noise_shapes`' entries, in their order: those whose constant
        map G has (each is created only where its option is on)."""
        return [name for name, const in _EXTRA_NOISE.items() if hasattr(self, const)]

    def _pore_noise(
        self, name: str, noise: torch.Tensor | None, noise_mode: str, like: torch.Tensor
    ) -> torch.Tensor:
        """A pore field's noise: ``noise`` where given, else drawn for each of ``like``'s tiles
        (``random``) or G's constant map (``const``)."""
        if noise is not None:
            return noise
        const = getattr(self, _EXTRA_NOISE[name])
        if noise_mode != "random":
            return const
        return torch.randn((like.shape[0], *const.shape[1:]), device=like.device)

    def _crack_field(
        self, noise: torch.Tensor | None, noise_mode: str, logit: torch.Tensor, ws: torch.Tensor
    ) -> torch.Tensor:
        """Each tile's crack (N, 1, R, R) on the pore logit: a straight line whose angle and offset
        from the centre are uniform (two normals through Φ; ``noise`` (N or 1, 1, 2)), a Gaussian
        profile across it, times the fixed strength and the gate σ(linear(w)) of the first w."""
        noise = self._pore_noise("crack", noise, noise_mode, logit)
        u = 0.5 * (1 + torch.erf(noise.float() / math.sqrt(2.0)))  # uniform in (0, 1)
        angle, offset = math.pi * u[..., 0], (u[..., 1] - 0.5) * logit.shape[-1]
        axis = torch.arange(logit.shape[-1], device=logit.device) - (logit.shape[-1] - 1) / 2
        y, x = axis.view(-1, 1), axis.view(1, -1)
        distance = x * torch.sin(angle)[..., None, None] - y * torch.cos(angle)[..., None, None]
        line = torch.exp(-0.5 * ((distance - offset[..., None, None]) / self.pore_crack_width) ** 2)
        gate = torch.sigmoid(self.pore_crack_gate(ws[:, 0].float()))[:, :, None, None]
        return (self.pore_crack_strength * gate * line).to(logit.dtype)

    def _outline_field(
        self, noise: torch.Tensor | None, noise_mode: str, logit: torch.Tensor
    ) -> torch.Tensor:
        """The pore outlines' random field (N, 1, R, R) times its strength (learnt or fixed), from
        white noise (N or 1, 1, R + 2r, R + 2r), r the kernel's radius."""
        k = self.pore_outline_kernel.to(logit.dtype)
        noise = self._pore_noise("outline", noise, noise_mode, logit).to(logit.dtype)
        field = F.conv2d(F.conv2d(noise, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))
        return self.pore_outline_strength.to(logit.dtype) * field

    def forward(
        self,
        z: torch.Tensor,
        truncation_psi: float = 1.0,
        noise_mode: str = "random",
        mixing_prob: float = 0.0,
        return_ws: bool = False,
        return_phases: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Images from latents z. During training (``self.training``) w_avg is tracked and, with
        probability ``mixing_prob``, the ws after a random layer come from a second z (style mixing
        regularisation). ``return_ws``: (images, ws); ``return_phases``: (images, solid, pore)."""
        if return_ws and return_phases:
            raise ValueError("return_ws and return_phases: one at a time")
        w = self.map(z, truncation_psi, track_w_avg=self.training)
        ws = w[:, None].repeat(1, self.num_ws, 1)
        if mixing_prob > 0 and torch.rand(()) < mixing_prob:
            cutoff = int(torch.randint(1, self.num_ws, ()))
            ws[:, cutoff:] = self.map(torch.randn_like(z), truncation_psi)[:, None]
        images = self.synthesis(ws, noise_mode, return_phases=return_phases)
        return (images, ws) if return_ws else images


class DiscriminatorBlock(nn.Module):
    """Residual block: two 3×3 convs (the second downsampling) plus a 1×1 downsampling skip."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(in_ch, in_ch, 3, activation=True)
        self.conv1 = EqualConv2d(in_ch, out_ch, 3, activation=True, down=True)
        self.skip = EqualConv2d(in_ch, out_ch, 1, bias=False, down=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.skip(x) + self.conv1(self.conv0(x))) / math.sqrt(2.0)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """Append the mean standard deviation across groups of samples as one extra feature map,
    so D can see a lack of variety (mode collapse) within a batch."""
    n, c, h, w = x.shape
    g = max(d for d in range(1, min(group_size, n) + 1) if n % d == 0)
    y = x.float().reshape(g, -1, c, h, w)
    y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt().mean((1, 2, 3))
    y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w).to(x.dtype)
    return torch.cat([x, y], 1)


class Discriminator(nn.Module):
    """Residual StyleGAN2 discriminator: fromRGB, residual blocks down to 4×4, minibatch-stddev
    epilogue, one logit per image."""

    def __init__(
        self,
        resolution: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        img_channels: int = 1,
        mbstd_group: int = 4,
    ) -> None:
        super().__init__()
        log2 = check_resolution(resolution)
        ch = [channels_at(2**i, channel_base, channel_max) for i in range(log2 + 1)]
        self.from_rgb = EqualConv2d(img_channels, ch[log2], 1, activation=True)
        self.blocks = nn.Sequential(
            *[DiscriminatorBlock(ch[i], ch[i - 1]) for i in range(log2, 2, -1)]
        )
        self.mbstd_group = mbstd_group
        self.conv = EqualConv2d(ch[2] + 1, ch[2], 3, activation=True)
        self.fc = EqualLinear(ch[2] * 16, ch[2], activation=True)
        self.out = EqualLinear(ch[2], 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.from_rgb(images))
        x = self.conv(minibatch_stddev(x, self.mbstd_group))
        return self.out(self.fc(x.flatten(1))).squeeze(1)
