"""CycleGAN parts (Zhu et al., ICCV 2017): ResNet generators with a scale factor, PatchGAN
discriminators, least-squares GAN loss and the image pool.

The porous study translates between domains of different pixel counts (a 64² micro-CT tile is a
1024² SEM region at ×16), so a generator may change resolution: ``scale = 16`` upsamples (G_LH),
``scale = 1/16`` downsamples (G_HL) with extra stride-2 stages, ``scale = 1`` is the classic
same-size translator. Instance norm, reflection padding, ReLU; tanh output in [-1, 1].

The STEM study (sim → experiment, same pixel size) uses U-Net generators, whose skip connections
keep every atom column where it was, and adds discriminators that judge the Fourier
log-amplitude of an image: noise colour, scan distortions and lattice-peak sharpness show there
more plainly than in real space.
"""

from __future__ import annotations

import math
import random
from typing import Any

import torch
from torch import nn


class ResnetBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(ch, ch, 3),
            nn.InstanceNorm2d(ch),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(ch, ch, 3),
            nn.InstanceNorm2d(ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _log2_int(value: float, what: str) -> int:
    k = math.log2(value)
    if abs(k - round(k)) > 1e-9:
        raise ValueError(f"{what} {value} is not a power of two")
    return int(round(k))


class ResnetGenerator(nn.Module):
    """c7s1-ngf, down-sampling stages, ``n_blocks`` residual blocks, up-sampling stages, c7s1-out.

    ``n_downsampling`` stride-2 stages always come first (they give the residual blocks a larger
    receptive field); then ``scale`` adds upsampling stages (scale > 1) or more downsampling
    stages (scale < 1). Upsampling is nearest-neighbour + 3×3 conv, which avoids the checkerboard
    artefacts of transposed convolutions. Channels double per downsampling stage up to
    ``max_ch`` and halve per upsampling stage down to ngf/4.
    """

    def __init__(
        self,
        in_ch: int = 1,
        out_ch: int = 1,
        ngf: int = 64,
        n_blocks: int = 9,
        n_downsampling: int = 2,
        scale: float = 1.0,
        max_ch: int | None = None,
    ) -> None:
        super().__init__()
        k = _log2_int(scale, "scale")
        downs = n_downsampling + max(0, -k)
        ups = n_downsampling + max(0, k)
        self.scale = scale
        max_ch = max_ch or ngf * 4
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_ch, ngf, 7),
            nn.InstanceNorm2d(ngf),
            nn.ReLU(True),
        ]
        ch = ngf
        for _ in range(downs):
            nxt = min(ch * 2, max_ch)
            layers += [
                nn.Conv2d(ch, nxt, 3, stride=2, padding=1),
                nn.InstanceNorm2d(nxt),
                nn.ReLU(True),
            ]
            ch = nxt
        layers += [ResnetBlock(ch) for _ in range(n_blocks)]
        min_ch = max(ngf // 4, 8)  # thin features at the largest sizes keep ×16 affordable
        for _ in range(ups):
            nxt = max(ch // 2, min_ch)
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.ReflectionPad2d(1),
                nn.Conv2d(ch, nxt, 3),
                nn.InstanceNorm2d(nxt),
                nn.ReLU(True),
            ]
            ch = nxt
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_ch, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class UnetGenerator(nn.Module):
    """Same-size translator: a U-Net (instance norm) with a tanh output in [-1, 1]."""

    def __init__(self, in_ch: int = 1, out_ch: int = 1, ngf: int = 64, depth: int = 4) -> None:
        super().__init__()
        from .unet import UNet

        self.scale = 1
        self.unet = UNet(in_ch, out_ch, width=ngf, depth=depth, norm="instance", upsample="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.unet(x))


def scan_row_jitter(
    x: torch.Tensor, rms_px: float, correlation: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Images (N, C, H, W) with every scan row (fast scan along x) shifted by its own sub-pixel
    amount: a stationary AR(1) series down the rows of each image, ``rms_px`` px rms and lag-1
    ``correlation`` — the row jitter of a scanning microscope (as the embedded simulator's
    ``scan_row_jitter``), applied in Fourier space along x (circular), computed in float32."""
    n, _, h, w = x.shape
    white = torch.randn(n, h, generator=generator, device="cpu").to(x.device)
    shifts = torch.empty_like(white)
    shifts[:, 0] = white[:, 0]
    innovation = math.sqrt(1 - correlation**2)
    for r in range(1, h):
        shifts[:, r] = correlation * shifts[:, r - 1] + innovation * white[:, r]
    kx = torch.fft.rfftfreq(w, device=x.device)
    phase = torch.exp(-2j * math.pi * kx[None, None, :] * (rms_px * shifts)[:, :, None])
    with torch.autocast(device_type=x.device.type, enabled=False):
        spectrum = torch.fft.rfft(x.float(), dim=-1) * phase[:, None]
        return torch.fft.irfft(spectrum, n=w, dim=-1).to(x.dtype)


def fourier_log_amplitude(x: torch.Tensor) -> torch.Tensor:
    """log(1 + |FFT|) of Hann-windowed, mean-free images (N, C, H, W), fftshifted (zero
    frequency at the centre) and standardised per image; computed in float32."""
    h, w = x.shape[-2:]
    window = torch.outer(
        torch.hann_window(h, periodic=False, device=x.device),
        torch.hann_window(w, periodic=False, device=x.device),
    )
    with torch.autocast(device_type=x.device.type, enabled=False):
        x = x.float()
        x = (x - x.mean((-2, -1), keepdim=True)) * window
        a = torch.fft.fftshift(torch.log1p(torch.fft.fft2(x).abs()), dim=(-2, -1))
        a = a - a.mean((-2, -1), keepdim=True)
        return a / (a.std((-2, -1), keepdim=True) + 1e-6)


class FourierDiscriminator(nn.Module):
    """A PatchGAN that sees the Fourier log-amplitude of its input instead of the image."""

    def __init__(self, in_ch: int = 1, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        self.patch = PatchDiscriminator(in_ch, ndf, n_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.patch(fourier_log_amplitude(x))


class PatchDiscriminator(nn.Module):
    """PatchGAN: a map of real/fake scores, each seeing one patch (70×70 for ``n_layers=3``).

    Use fewer layers for small images (the output map must stay at least 2×2):
    :func:`patch_layers_for` picks the largest sensible number for a size.
    """

    def __init__(self, in_ch: int = 1, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, ndf, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        ch = ndf
        for i in range(1, n_layers + 1):
            nxt = ndf * min(2**i, 8)
            layers += [
                nn.Conv2d(ch, nxt, 4, stride=2 if i < n_layers else 1, padding=1),
                nn.InstanceNorm2d(nxt),
                nn.LeakyReLU(0.2, True),
            ]
            ch = nxt
        layers += [nn.Conv2d(ch, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def patch_layers_for(size: int, wanted: int = 3) -> int:
    """Largest ``n_layers`` ≤ ``wanted`` whose PatchGAN output on ``size``² tiles is ≥ 2×2."""
    for n in range(wanted, 0, -1):
        if size // 2**n - 2 >= 2:  # n stride-2 convs, then two stride-1 4×4 convs (−1 px each)
            return n
    return 0


class ImagePool:
    """History of generated images (Shrivastava et al.): D is shown, half of the time, an older
    fake instead of the newest, which damps oscillation. ``size`` 0 disables it."""

    def __init__(
        self, size: int = 50, rng: random.Random | None = None, device: torch.device | str = "cpu"
    ) -> None:
        self.size, self.images, self.device = size, [], device
        self.rng = rng or random.Random(0)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image[None]
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif self.rng.random() < 0.5:
                i = self.rng.randrange(self.size)
                out.append(self.images[i].clone())
                self.images[i] = image
            else:
                out.append(image)
        return torch.cat(out)

    def state_dict(self) -> dict:
        return {"images": [i.cpu() for i in self.images], "rng": self.rng.getstate()}

    def load_state_dict(self, state: dict) -> None:
        self.images = [i.to(self.device) for i in state["images"]]
        self.rng.setstate(state["rng"])


def build_cyclegan(cfg: dict[str, Any]) -> dict[str, "torch.nn.Module"]:
    """The four networks of a CycleGAN (six with ``fourier``) from its model config."""
    if cfg.get("generator", "resnet") == "unet":
        depth = cfg["n_downsampling"]
        nets = {
            "G_LH": UnetGenerator(cfg["in_ch"], cfg["out_ch"], cfg["ngf"], depth),
            "G_HL": UnetGenerator(cfg["out_ch"], cfg["in_ch"], cfg["ngf"], depth),
        }
    else:
        g = dict(ngf=cfg["ngf"], n_blocks=cfg["n_blocks"], n_downsampling=cfg["n_downsampling"])
        nets = {
            "G_LH": ResnetGenerator(cfg["in_ch"], cfg["out_ch"], scale=cfg["scale"], **g),
            "G_HL": ResnetGenerator(cfg["out_ch"], cfg["in_ch"], scale=1 / cfg["scale"], **g),
        }
    nets["D_H"] = PatchDiscriminator(cfg["out_ch"], cfg["ndf"], cfg["n_layers_high"])
    nets["D_L"] = PatchDiscriminator(cfg["in_ch"], cfg["ndf"], cfg["n_layers_low"])
    if cfg.get("fourier", False):
        nets["F_H"] = FourierDiscriminator(cfg["out_ch"], cfg["ndf"], cfg["n_layers_high"])
        nets["F_L"] = FourierDiscriminator(cfg["in_ch"], cfg["ndf"], cfg["n_layers_low"])
    return nets
