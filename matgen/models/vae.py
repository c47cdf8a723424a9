"""Conditional VAE for small grey micrographs (Kingma & Welling 2014; Sohn et al. 2015).

Encoder q(z | x, c) and decoder p(x | z, c), both given the condition c (one-hot class and a
standardised scalar target such as E11). Four stride-2 convolutions take a 64² image to 4²; the
latent is small (8–16) so that each variable can be traversed and interpreted. β weights the KL
term (β-VAE): larger β trades reconstruction for more disentangled latents.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, 1, 1),
                         nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))


class ConditionalVAE(nn.Module):
    """x (N, C, R, R) in [0, 1], cond (N, cond_dim) → reconstruction logits, mu, logvar.

    ``local_channels`` 0: one global latent of ``latent_dim`` variables. ``local_channels`` k > 0:
    beside it, a local latent map of k channels on an (R/4)² grid (a two-level VAE, in the spirit
    of NVAE / VQ-VAE-2's split into global and local codes). A few global variables cannot place
    ~100 grains, so a global-only VAE can only draw their average, a blur; the local map carries
    where grains and boundaries are, and the global variables are left with what is shared by the
    whole image, which is what the traversals are meant to show. The latent vector is flat,
    [global, local map], of size ``z_size``; ``latent_dim`` counts only the global variables.
    """

    def __init__(self, resolution: int = 64, img_channels: int = 1, cond_dim: int = 5,
                 latent_dim: int = 8, width: int = 32, local_channels: int = 0) -> None:
        super().__init__()
        n_down = 4
        if resolution % 2 ** n_down:
            raise ValueError(f"resolution {resolution} is not a multiple of {2 ** n_down}")
        self.resolution, self.latent_dim, self.cond_dim = resolution, latent_dim, cond_dim
        self.local_channels, self.local_size = local_channels, resolution // 4
        self.z_size = latent_dim + local_channels * self.local_size ** 2
        chans = [img_channels + cond_dim] + [width * 2 ** i for i in range(n_down)]
        self.encoder = nn.Sequential(*[_down(a, b) for a, b in zip(chans[:-1], chans[1:])])
        self.bottom = resolution // 2 ** n_down
        flat = chans[-1] * self.bottom ** 2
        self.to_stats = nn.Linear(flat + cond_dim, 2 * latent_dim)
        self.from_latent = nn.Linear(latent_dim + cond_dim, flat)
        dec = [chans[-1] // 2 ** i for i in range(n_down + 1)]
        ins = dec[:-1]
        if local_channels:
            # the local posterior reads the encoder after its first two downsamplings (R/4);
            # the decoder takes the local map in at the same size
            self.to_local_stats = nn.Conv2d(chans[2], 2 * local_channels, 3, 1, 1)
            ins[2] += local_channels
        self.decoder = nn.ModuleList([_up(a, b) for a, b in zip(ins, dec[1:])])
        self.to_image = nn.Conv2d(dec[-1], img_channels, 3, 1, 1)
        self._top = chans[-1]

    def encode(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance, flat (N, z_size): [global, local map]."""
        maps = cond[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        h = torch.cat([x, maps], 1)
        for i, layer in enumerate(self.encoder):
            h = layer(h)
            if i == 1 and self.local_channels:
                local = self.to_local_stats(h)
        mu, logvar = self.to_stats(torch.cat([h.flatten(1), cond], 1)).chunk(2, 1)
        if self.local_channels:
            lmu, llogvar = local.chunk(2, 1)
            mu, logvar = torch.cat([mu, lmu.flatten(1)], 1), torch.cat([logvar, llogvar.flatten(1)], 1)
        return mu, logvar.clamp(-12, 8)

    def decode(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Logits of the image from flat latents (N, z_size); ``torch.sigmoid`` gives
        intensities in [0, 1]."""
        h = self.from_latent(torch.cat([z[:, :self.latent_dim], cond], 1))
        h = h.view(-1, self._top, self.bottom, self.bottom)
        for i, layer in enumerate(self.decoder):
            if i == 2 and self.local_channels:
                s = self.local_size
                h = torch.cat([h, z[:, self.latent_dim:].view(-1, self.local_channels, s, s)], 1)
            h = layer(h)
        return self.to_image(h)

    def forward(self, x: torch.Tensor, cond: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x, cond)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z, cond), mu, logvar


def vae_loss(logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             beta: float = 1.0, decoder_sigma: float = 0.0
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, reconstruction, KL) per image: negative log-likelihood summed over pixels plus
    β · KL(q(z|x,c) ‖ N(0, I)).

    ``decoder_sigma`` 0: Bernoulli likelihood of the intensities (binary cross-entropy).
    ``decoder_sigma`` σ > 0: Gaussian likelihood with std σ (intensity units, [0, 1]), i.e.
    Σ (x − sigmoid(logits))² / 2σ² up to a constant. For grey images that are not near 0 or 1
    the Bernoulli term is nearly flat: a blur costs little against the nats a latent needs to
    place a grain, so the VAE blurs; a σ near the grey-level differences between grains makes a
    misplaced boundary cost what it should.
    """
    if decoder_sigma > 0:
        recon = (torch.sigmoid(logits) - x).square().sum() / (2 * decoder_sigma ** 2) / len(x)
    else:
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
    kl = -0.5 * torch.sum(1 + logvar - mu.square() - logvar.exp()) / len(x)
    return recon + beta * kl, recon, kl
