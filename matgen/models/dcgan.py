"""Conditional DCGAN with spectral normalisation and hinge loss (Radford et al. 2016; Miyato et
al. 2018) for small grey micrographs.

The condition c (one-hot class and a standardised scalar target) is appended to the latent of
G and, as constant feature maps, to the input of D. Spectral norm on every D layer and the hinge
loss keep the small-data training stable without gradient penalties.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class ConditionalGenerator(nn.Module):
    """[z, c] → image in [-1, 1] (N, C, R, R): a linear layer to 4², then 2× upsampling blocks."""

    def __init__(self, resolution: int = 64, img_channels: int = 1, cond_dim: int = 5,
                 z_dim: int = 64, width: int = 32, periodic: bool = False) -> None:
        super().__init__()
        # periodic: circular padding, for periodic microstructures (RVEs); zero padding would
        # otherwise print a frame the data never has
        pad = "circular" if periodic else "zeros"
        n_up = resolution.bit_length() - 3
        if 2 ** (n_up + 2) != resolution:
            raise ValueError(f"resolution {resolution} is not a power of two >= 8")
        self.z_dim, self.cond_dim, self.resolution = z_dim, cond_dim, resolution
        top = width * 2 ** (n_up - 1)
        self.fc = nn.Sequential(nn.Linear(z_dim + cond_dim, top * 16), nn.BatchNorm1d(top * 16),
                                nn.ReLU())
        blocks, ch = [], top
        for _ in range(n_up):
            nxt = max(ch // 2, width)  # at least `width` maps at full resolution: 1-px boundaries
            blocks += [nn.Upsample(scale_factor=2, mode="nearest"),
                       nn.Conv2d(ch, nxt, 3, 1, 1, padding_mode=pad), nn.BatchNorm2d(nxt), nn.ReLU()]
            ch = nxt
        self.blocks = nn.Sequential(*blocks, nn.Conv2d(ch, img_channels, 3, 1, 1, padding_mode=pad),
                                    nn.Tanh())
        self._top = top

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.fc(torch.cat([z, cond], 1)).view(-1, self._top, 4, 4)
        return self.blocks(h)


class ConditionalDiscriminator(nn.Module):
    """[image, c as maps] → one unbounded score per image; spectral norm on every layer.

    With ``projection`` the condition also enters as an inner product with the pooled features,
    score = w·φ(x) + ⟨V c, Σφ(x)⟩ (projection discriminator, Miyato & Koyama 2018): D must then
    tell *which* (class, E11) an image looks like, not only whether it looks real, which is what
    makes a small conditional GAN follow its condition.
    """

    def __init__(self, resolution: int = 64, img_channels: int = 1, cond_dim: int = 5,
                 width: int = 32, projection: bool = False) -> None:
        super().__init__()
        n_down = resolution.bit_length() - 3
        layers, ch = [], img_channels + cond_dim
        for i in range(n_down):
            # a 3x3 stride-1 conv before each 4x4 stride-2 one (Miyato et al.'s SN-DCGAN D): with
            # spectral norm, a single strided conv per scale cannot see 1-px grain boundaries
            nxt = width * 2 ** i
            layers += [spectral_norm(nn.Conv2d(ch, nxt, 3, 1, 1)), nn.LeakyReLU(0.1),
                       spectral_norm(nn.Conv2d(nxt, nxt, 4, 2, 1)), nn.LeakyReLU(0.1)]
            ch = nxt
        self.features = nn.Sequential(*layers)
        self.out = spectral_norm(nn.Linear(ch * 16, 1))
        self.embed = spectral_norm(nn.Linear(cond_dim, ch, bias=False)) if projection else None

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        maps = cond[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        h = self.features(torch.cat([x, maps], 1))
        score = self.out(h.flatten(1)).squeeze(1)
        if self.embed is not None:
            score = score + (self.embed(cond) * h.sum((2, 3))).sum(1)
        return score


def hinge_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def hinge_g_loss(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()
