"""U-Net (Ronneberger et al. 2015) for per-pixel prediction, with optional residual blocks
(the res-U-Net of the STEM vacancy detector). Fully convolutional: any input whose sides are
multiples of 2^depth works, so a network trained on tiles runs on whole images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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


class UNet(nn.Module):
    """x (N, in_ch, H, W) → logits (N, out_ch, H, W); ``depth`` poolings, ``width`` channels at
    full resolution, doubling per level; ``upsample`` is ``transpose`` or ``nearest``."""

    def __init__(
        self,
        in_ch: int = 1,
        out_ch: int = 2,
        width: int = 32,
        depth: int = 4,
        residual: bool = False,
        norm: str = "batch",
        upsample: str = "transpose",
    ) -> None:
        super().__init__()
        self.depth = depth
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
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for up, merge in zip(self.up, self.merge):
            x = merge(torch.cat([up(x), skips.pop()], 1))
        return self.head(x)
