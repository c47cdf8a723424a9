"""Conditional DCGAN discriminator with spectral normalisation and hinge loss (Radford et al.
2016; Miyato et al. 2018) for small grey micrographs: the critic of the polysilicon cGAN and of
the cVAE's adversarial term (their generators are in :mod:`matgen.models.tessellation`).

The condition c (one-hot class and a standardised scalar target) enters as constant feature maps
beside the image. Spectral norm on every layer and the hinge loss keep the small-data training
stable without gradient penalties.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


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
