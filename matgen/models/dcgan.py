"""Conditional DCGAN with spectral normalisation and hinge loss (Radford et al. 2016; Miyato et
al. 2018) for small grey micrographs, with an optional fully convolutional (spatial GAN) generator.

The condition c (one-hot class and a standardised scalar target) is appended to the latent of
G (to the noise map, and before every upsampling, in the spatial generator) and, as constant
feature maps, to the input of D. Spectral norm on every D layer and the hinge
loss keep the small-data training stable without gradient penalties.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class ConditionalGenerator(nn.Module):
    """[z, c] → image in [-1, 1] (N, C, R, R).

    ``latent_resolution`` 0: DCGAN — a linear layer maps [z, c] to 4², then 2× upsampling blocks.
    ``latent_resolution`` s > 0: fully convolutional (spatial GAN, Jetchev et al. 2016) — z is a
    noise map of z_dim / s² channels on an s × s grid, with the condition as constant maps beside
    it and again before each upsampling. A grain structure is a stationary texture: every grid cell
    seeds its neighbourhood by the same local rule, which the convolutions learn from every
    location of every image at once, instead of one global vector having to place ~100 grains.
    ``periodic``: circular padding, for periodic RVEs. Otherwise the spatial generator pads by
    replicating the edge: zero padding lets G learn where the border is and print a frame the
    data never has (the DCGAN keeps zero padding).
    """

    def __init__(
        self,
        resolution: int = 64,
        img_channels: int = 1,
        cond_dim: int = 5,
        z_dim: int = 64,
        width: int = 32,
        periodic: bool = False,
        latent_resolution: int = 0,
    ) -> None:
        super().__init__()
        pad = "circular" if periodic else "replicate" if latent_resolution else "zeros"
        start = latent_resolution or 4
        n_up = (resolution // start).bit_length() - 1
        if start * 2**n_up != resolution or n_up < 1:
            raise ValueError(f"resolution {resolution} is not a power-of-two multiple of {start}")
        if latent_resolution and z_dim % latent_resolution**2:
            raise ValueError(
                f"z_dim {z_dim} is not a multiple of latent_resolution² ({latent_resolution**2})"
            )
        self.z_dim, self.cond_dim, self.resolution = z_dim, cond_dim, resolution
        self.latent_resolution = latent_resolution
        top = width * 2 ** (n_up - 1)  # maps at the start; halved per upsampling down to width
        if latent_resolution:
            self.fc = nn.Sequential(
                nn.Conv2d(z_dim // latent_resolution**2 + cond_dim, top, 3, 1, 1, padding_mode=pad),
                nn.BatchNorm2d(top),
                nn.ReLU(),
                nn.Conv2d(top, top, 3, 1, 1, padding_mode=pad),
                nn.BatchNorm2d(top),
                nn.ReLU(),
            )
        else:
            self.fc = nn.Sequential(
                nn.Linear(z_dim + cond_dim, top * 16), nn.BatchNorm1d(top * 16), nn.ReLU()
            )
        self.ups, ch = nn.ModuleList(), top
        extra = cond_dim if latent_resolution else 0
        for _ in range(n_up):
            nxt = max(ch // 2, width)  # at least `width` maps at full resolution: 1-px boundaries
            self.ups.append(
                nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv2d(ch + extra, nxt, 3, 1, 1, padding_mode=pad),
                    nn.BatchNorm2d(nxt),
                    nn.ReLU(),
                )
            )
            ch = nxt
        self.out = nn.Sequential(nn.Conv2d(ch, img_channels, 3, 1, 1, padding_mode=pad), nn.Tanh())
        self._top = top

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        s = self.latent_resolution
        if s:
            h = self.fc(torch.cat([z.view(len(z), -1, s, s), _maps(cond, s)], 1))
        else:
            h = self.fc(torch.cat([z, cond], 1)).view(-1, self._top, 4, 4)
        for up in self.ups:
            h = up(torch.cat([h, _maps(cond, h.shape[-1])], 1) if s else h)
        return self.out(h)


def _maps(cond: torch.Tensor, size: int) -> torch.Tensor:
    """The condition vector as constant feature maps (N, cond_dim, size, size)."""
    return cond[:, :, None, None].expand(-1, -1, size, size)


class ConditionalDiscriminator(nn.Module):
    """[image, c as maps] → one unbounded score per image; spectral norm on every layer.

    With ``projection`` the condition also enters as an inner product with the pooled features,
    score = w·φ(x) + ⟨V c, Σφ(x)⟩ (projection discriminator, Miyato & Koyama 2018): D must then
    tell *which* (class, E11) an image looks like, not only whether it looks real, which is what
    makes a small conditional GAN follow its condition.
    """

    def __init__(
        self,
        resolution: int = 64,
        img_channels: int = 1,
        cond_dim: int = 5,
        width: int = 32,
        projection: bool = False,
        refine_scales: int | None = None,
    ) -> None:
        super().__init__()
        n_down = resolution.bit_length() - 3
        refine = n_down if refine_scales is None else refine_scales
        layers, ch = [], img_channels + cond_dim
        for i in range(n_down):
            # a 3x3 stride-1 conv before the 4x4 stride-2 one (Miyato et al.'s SN-DCGAN D) at the
            # first `refine_scales` scales: with spectral norm, a single strided conv cannot see
            # 1-px grain boundaries; the coarser scales can do without (each costs as much)
            nxt = width * 2**i
            if i < refine:
                layers += [spectral_norm(nn.Conv2d(ch, nxt, 3, 1, 1)), nn.LeakyReLU(0.1)]
                ch = nxt
            layers += [spectral_norm(nn.Conv2d(ch, nxt, 4, 2, 1)), nn.LeakyReLU(0.1)]
            ch = nxt
        self.features = nn.Sequential(*layers)
        self.out = spectral_norm(nn.Linear(ch * 16, 1))
        self.embed = spectral_norm(nn.Linear(cond_dim, ch, bias=False)) if projection else None

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.features(torch.cat([x, _maps(cond, x.shape[-1])], 1))
        score = self.out(h.flatten(1)).squeeze(1)
        if self.embed is not None:
            score = score + (self.embed(cond) * h.sum((2, 3))).sum(1)
        return score
