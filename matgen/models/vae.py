"""Conditional VAE for small grey micrographs (Kingma & Welling 2014; Sohn et al. 2015).

Encoder q(z | x, c) and decoder p(x | z, c), both given the condition c (one-hot class and a
standardised scalar target such as E11). Four stride-2 convolutions take a 64² image to 4²; the
latent is small (8–16) so that each variable can be traversed and interpreted. β weights the KL
term (β-VAE): larger β trades reconstruction for more disentangled latents.
"""

from __future__ import annotations

import torch
from torch import nn


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(cin, cout, 3, 1, 1),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.2),
    )


class ConditionalVAE(nn.Module):
    """x (N, C, R, R) in [0, 1], cond (N, cond_dim) → reconstruction logits, mu, logvar."""

    def __init__(
        self,
        resolution: int = 64,
        img_channels: int = 1,
        cond_dim: int = 5,
        latent_dim: int = 8,
        width: int = 32,
    ) -> None:
        super().__init__()
        n_down = 4
        if resolution % 2**n_down:
            raise ValueError(f"resolution {resolution} is not a multiple of {2**n_down}")
        self.resolution, self.latent_dim, self.cond_dim = resolution, latent_dim, cond_dim
        chans = [img_channels + cond_dim] + [width * 2**i for i in range(n_down)]
        self.encoder = nn.Sequential(*[_down(a, b) for a, b in zip(chans[:-1], chans[1:])])
        self.bottom = resolution // 2**n_down
        flat = chans[-1] * self.bottom**2
        self.to_stats = nn.Linear(flat + cond_dim, 2 * latent_dim)
        self.from_latent = nn.Linear(latent_dim + cond_dim, flat)
        dec = [chans[-1] // 2**i for i in range(n_down + 1)]
        self.decoder = nn.Sequential(
            *[_up(a, b) for a, b in zip(dec[:-1], dec[1:])],
            nn.Conv2d(dec[-1], img_channels, 3, 1, 1),
        )
        self._top = chans[-1]

    def encode(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = cond[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        h = self.encoder(torch.cat([x, maps], 1)).flatten(1)
        mu, logvar = self.to_stats(torch.cat([h, cond], 1)).chunk(2, 1)
        return mu, logvar.clamp(-12, 8)

    def decode(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Logits of the image; ``torch.sigmoid`` gives intensities in [0, 1]."""
        h = self.from_latent(torch.cat([z, cond], 1))
        return self.decoder(h.view(-1, self._top, self.bottom, self.bottom))

    def forward(
        self, x: torch.Tensor, cond: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x, cond)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z, cond), mu, logvar
