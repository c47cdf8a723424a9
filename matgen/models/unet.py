"""U-Net (Ronneberger et al. 2015) for per-pixel prediction, with optional residual blocks
(the res-U-Net of the STEM vacancy detector). Fully convolutional: any input whose sides are
multiples of 2^depth works, so a network trained on tiles runs on whole images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .kernels import gaussian_taps


class ConvBlock(nn.Module):
    """Two 3×3 conv + norm + ReLU; with ``residual`` a 1×1 projection skips the pair.

    ``norm`` is ``batch`` (segmentation / detection nets) or ``instance`` (CycleGAN generators,
    trained with batches of a few images)."""

    def __init__(self, cin: int, cout: int, residual: bool = False, norm: str = "batch") -> None:
        super().__init__()
        Norm = {"batch": nn.BatchNorm2d, "instance": lambda c: nn.InstanceNorm2d(c, affine=True)}[
            norm
        ]
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            Norm(cout),
            nn.ReLU(True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            Norm(cout),
        )
        self.skip = (
            (nn.Conv2d(cin, cout, 1, bias=False) if cin != cout else nn.Identity())
            if residual
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return F.relu(y + self.skip(x) if self.skip is not None else y)


class LocalContrast(nn.Module):
    """Each pixel minus the Gaussian-weighted mean of its neighbourhood (sd ``sigma_px``),
    divided by that neighbourhood's standard deviation: (N, 1, H, W) → same shape, no weights.

    Background, contamination and detector gain vary over tens of Å in an experimental STEM
    image, and a generator trained on small tiles cannot reproduce them; a detector that sees
    only local contrast does not have to learn them. The window is renormalised where it
    leaves the image (a normalised convolution), so any input size works and a tile of an
    image is normalised as the image is, away from the tile's border."""

    def __init__(self, sigma_px: float, eps: float = 1e-3) -> None:
        super().__init__()
        radius = max(1, int(3 * sigma_px + 0.5))
        taps = gaussian_taps(sigma_px, radius)
        self.register_buffer("taps", (taps / taps.sum()).float(), persistent=False)
        self.eps = eps

    def _blur(self, x: torch.Tensor) -> torch.Tensor:
        k = self.taps.to(x.dtype)
        r = len(k) // 2
        x = F.conv2d(x, k.view(1, 1, 1, -1), padding=(0, r))
        return F.conv2d(x, k.view(1, 1, -1, 1), padding=(r, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # in float32 whatever autocast is on: a local sd of a few grey levels in bfloat16's
        # 8-bit mantissa would be noise
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self._normalise(x.float())

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        flat = x.reshape(n * c, 1, h, w)
        weight = self._blur(torch.ones_like(flat[:1]))
        mean = self._blur(flat) / weight
        dev = flat - mean
        var = self._blur(dev * dev) / weight
        return (dev / torch.sqrt(var + self.eps**2)).reshape(n, c, h, w)


class UNet(nn.Module):
    """x (N, in_ch, H, W) → logits (N, out_ch, H, W); ``depth`` poolings, ``width`` channels at
    full resolution, doubling per level; ``upsample`` is ``transpose`` or ``nearest``;
    ``local_contrast_px`` > 0 puts :class:`LocalContrast` (that window) before the first
    layer."""

    def __init__(
        self,
        in_ch: int = 1,
        out_ch: int = 2,
        width: int = 32,
        depth: int = 4,
        residual: bool = False,
        norm: str = "batch",
        upsample: str = "transpose",
        local_contrast_px: float = 0.0,
    ) -> None:
        super().__init__()
        self.depth = depth
        self.contrast = LocalContrast(local_contrast_px) if local_contrast_px > 0 else None
        chans = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList(
            [ConvBlock(in_ch, chans[0], residual, norm)]
            + [ConvBlock(chans[i], chans[i + 1], residual, norm) for i in range(depth)]
        )
        # 'nearest' (resize + 3x3 conv) avoids the periodic stride-2 pattern of transposed
        # convolutions, which a Fourier discriminator sees at once
        self.up = nn.ModuleList(
            [
                nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2)
                if upsample == "transpose"
                else nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv2d(chans[i + 1], chans[i], 3, padding=1),
                )
                for i in reversed(range(depth))
            ]
        )
        self.merge = nn.ModuleList(
            [ConvBlock(2 * chans[i], chans[i], residual, norm) for i in reversed(range(depth))]
        )
        self.head = nn.Conv2d(chans[0], out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 2**self.depth or x.shape[-2] % 2**self.depth:
            raise ValueError(f"input {tuple(x.shape[-2:])} is not a multiple of {2**self.depth}")
        if self.contrast is not None:
            x = self.contrast(x)
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for up, merge in zip(self.up, self.merge):
            x = merge(torch.cat([up(x), skips.pop()], 1))
        return self.head(x)
