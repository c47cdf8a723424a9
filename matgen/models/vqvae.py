"""VQ-VAE (van den Oord et al. 2017) that encodes a micrograph and its segmentation mask together.

The input is the grey image stacked with the one-hot mask (1 + K channels); the decoder returns
the image (in [0, 1] after a sigmoid) and K mask logits, so decoding a code map gives a
consistent image + mask pair. The codebook is learnt by exponential moving averages of the
encoder outputs assigned to each code (decay 0.99), with the commitment loss β‖z − sg(e)‖²
(β 0.25) on the encoder, and codes unused for a while are restarted on random encoder outputs
(dead-code restart), so the whole codebook stays in use.

What a code map cannot carry — the detector noise and the texture finer than a code — the
decoder averages away, so decoded images are too smooth. With ``noise_size`` the model keeps
the power spectrum of its reconstruction residuals on the training crops (``fit_residual_noise``)
and :meth:`VQVAE.residual_noise` draws a stationary Gaussian field with that spectrum, added to
generated images so that their spectrum matches the real one at every frequency.
``upsample="nearest"`` (nearest-neighbour doubling + 3×3 conv) avoids the checkerboard of
strided transposed convolutions, whose 4-px period shows as a grid in generated images.

``encoder_mask``: what of the mask the encoder sees — ``"all"`` its classes; ``"none"``: the image
alone, and the decoder draws the mask from the image's codes; ``"phases"``: every class but the
last (the pores), each pore filled with the phase round it (:func:`fill_last_class`), so the
pores are drawn from the image and the phases' outlines as annotated. A hand-drawn mask's
errors (each object dilated or eroded at random) are not in the codes of what the encoder does
not see, and the decoder's mask there is its best guess of the labels given the image — the
annotations' mean, not one annotator's draw.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class EMAQuantizer(nn.Module):
    """Nearest-code quantisation of (N, H, W, dim) vectors with an EMA-updated codebook."""

    def __init__(
        self,
        dim: int,
        n_codes: int,
        decay: float = 0.99,
        eps: float = 1e-5,
        restart_below: float = 0.01,
    ) -> None:
        super().__init__()
        self.dim, self.n_codes, self.decay, self.eps = dim, n_codes, decay, eps
        self.restart_below = restart_below
        embed = torch.randn(n_codes, dim)
        self.register_buffer("embed", embed)
        self.register_buffer("cluster_size", torch.ones(n_codes))
        self.register_buffer("embed_sum", embed.clone())

    def codes(self, z: torch.Tensor) -> torch.Tensor:
        flat = z.reshape(-1, self.dim)
        dist = (
            flat.square().sum(1, keepdim=True)
            - 2 * flat @ self.embed.t()
            + self.embed.square().sum(1)[None]
        )
        return dist.argmin(1).view(z.shape[:-1])

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        return F.embedding(codes, self.embed)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(straight-through quantised z, commitment loss ‖z − sg(e)‖², codes)."""
        codes = self.codes(z)
        quantized = self.lookup(codes)
        if self.training:
            with torch.no_grad():
                flat = z.reshape(-1, self.dim).float()
                onehot = F.one_hot(codes.reshape(-1), self.n_codes).float()
                self.cluster_size.lerp_(onehot.sum(0), 1 - self.decay)
                self.embed_sum.lerp_(onehot.t() @ flat, 1 - self.decay)
                n = self.cluster_size.sum()
                size = (self.cluster_size + self.eps) / (n + self.n_codes * self.eps) * n
                self.embed.copy_(self.embed_sum / size[:, None])
                # dead: used less than ``restart_below`` of an average code (relative, so the rule
                # does not depend on batch size or code-map size)
                dead = self.cluster_size < self.restart_below * n / self.n_codes
                if dead.any():  # restart unused codes on random encoder outputs of this batch
                    pick = torch.randint(0, len(flat), (int(dead.sum()),), device=flat.device)
                    self.embed[dead] = flat[pick]
                    self.embed_sum[dead] = flat[pick]
                    self.cluster_size[dead] = 1.0
        commitment = (z - quantized.detach()).square().mean()
        return z + (quantized - z).detach(), commitment, codes


class ResBlock(nn.Module):
    def __init__(self, ch: int, hidden: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(), nn.Conv2d(ch, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, ch, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


ENCODER_MASKS = ("all", "phases", "none")


def fill_last_class(mask: torch.Tensor, n_classes: int, max_radius: int = 16) -> torch.Tensor:
    """The one-hot (N, n_classes − 1, H, W) of a mask (N, H, W) without its last class: each of
    its pixels takes the most common of the other classes among its 8 neighbours, grown inwards
    from the class's edge one pixel a pass (``max_radius`` passes; what is left, class 0). A
    pore painted over either phase is filled with the phase round it, and its outline is gone."""
    k = n_classes - 1
    known = mask != k
    x = F.one_hot(torch.where(known, mask, 0).long(), k).permute(0, 3, 1, 2).float()
    x = x * known[:, None]
    for _ in range(max_radius):
        empty = x.sum(1, keepdim=True) == 0
        if not bool(empty.any()):
            break
        counts = _box3(x)  # each class among the 3 x 3 neighbours
        grown = F.one_hot(counts.argmax(1), k).permute(0, 3, 1, 2).float()
        x = torch.where(empty & (counts.sum(1, keepdim=True) > 0), grown, x)
    empty = x.sum(1, keepdim=True) == 0
    x[:, :1] = torch.where(empty, torch.ones_like(x[:, :1]), x[:, :1])
    return x


def _box3(x: torch.Tensor) -> torch.Tensor:
    """Sums over each pixel's 3 × 3 neighbourhood (zero-padded), in two passes of shifted
    adds: a tenth of ``avg_pool2d``'s time on the CPU, and the same argmax (whole counts)."""
    p = F.pad(x, (1, 1, 1, 1))
    rows = p[:, :, :, :-2] + p[:, :, :, 1:-1] + p[:, :, :, 2:]
    return rows[:, :, :-2] + rows[:, :, 1:-1] + rows[:, :, 2:]


class VQVAE(nn.Module):
    """(image (N, 1, H, W) in [0, 1], mask (N, H, W) int) → image, mask logits, commitment, codes.

    ``downsample`` (a power of two) is the code map's reduction: H/downsample × W/downsample codes.
    """

    def __init__(
        self,
        n_classes: int,
        img_channels: int = 1,
        width: int = 64,
        n_res: int = 2,
        embed_dim: int = 32,
        n_codes: int = 256,
        downsample: int = 4,
        decay: float = 0.99,
        upsample: str = "transpose",
        noise_size: int = 0,
        encoder_mask: str = "all",
    ) -> None:
        super().__init__()
        if upsample not in ("transpose", "nearest"):
            raise ValueError(f"upsample must be 'transpose' or 'nearest', got {upsample!r}")
        steps = downsample.bit_length() - 1
        if 2**steps != downsample or steps < 1:
            raise ValueError(f"downsample {downsample} is not a power of two >= 2")
        self.n_classes, self.img_channels, self.downsample = n_classes, img_channels, downsample
        if encoder_mask not in ENCODER_MASKS:
            raise ValueError(f"encoder_mask must be one of {', '.join(ENCODER_MASKS)}, "
                             f"got {encoder_mask!r}")  # fmt: skip
        self.encoder_mask = encoder_mask
        mask_channels = {"all": n_classes, "phases": n_classes - 1, "none": 0}[encoder_mask]
        cin = img_channels + mask_channels
        enc: list[nn.Module] = []
        for i in range(steps):
            enc += [nn.Conv2d(cin if i == 0 else width, width, 4, 2, 1), nn.ReLU()]
        enc += [nn.Conv2d(width, width, 3, padding=1)] + [
            ResBlock(width, width // 2) for _ in range(n_res)
        ]
        enc += [nn.ReLU(), nn.Conv2d(width, embed_dim, 1)]
        self.encoder = nn.Sequential(*enc)
        self.quantizer = EMAQuantizer(embed_dim, n_codes, decay)
        dec: list[nn.Module] = [nn.Conv2d(embed_dim, width, 3, padding=1)]
        dec += [ResBlock(width, width // 2) for _ in range(n_res)] + [nn.ReLU()]
        for i in range(steps):
            last = i == steps - 1
            cout = img_channels + n_classes if last else width
            if upsample == "nearest":
                dec += [nn.Upsample(scale_factor=2.0), nn.Conv2d(width, cout, 3, padding=1)]
            else:
                dec += [nn.ConvTranspose2d(width, cout, 4, 2, 1)]
            if not last:
                dec += [nn.ReLU()]
        self.decoder = nn.Sequential(*dec)
        if noise_size:  # power spectrum (noise_size², grey level²) of the residuals
            self.register_buffer("residual_power", torch.zeros(noise_size, noise_size))

    def encode(
        self, image: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Quantised vectors (N, h, w, dim), commitment loss and codes (N, h, w) of an image
        and its mask; pixels of no class (unlabelled, 255) are read as class 0."""
        mask = torch.where(mask < self.n_classes, mask, 0)
        x = image * 2 - 1
        if self.encoder_mask == "all":
            onehot = F.one_hot(mask.long(), self.n_classes).permute(0, 3, 1, 2).to(image.dtype)
            x = torch.cat([x, onehot], 1)
        elif self.encoder_mask == "phases":
            x = torch.cat([x, fill_last_class(mask, self.n_classes).to(image.dtype)], 1)
        z = self.encoder(x).permute(0, 2, 3, 1)
        return self.quantizer(z)

    def decode(self, quantized: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Quantised vectors (N, h, w, dim) → image in [0, 1] and mask logits (N, K, H, W)."""
        out = self.decoder(quantized.permute(0, 3, 1, 2))
        return torch.sigmoid(out[:, : self.img_channels]), out[:, self.img_channels :]

    def decode_codes(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.decode(self.quantizer.lookup(codes))

    @torch.no_grad()
    def fit_residual_noise(self, image: torch.Tensor, mask: torch.Tensor) -> float:
        """Set the residual spectrum from crops (N, C, s, s) with s = ``noise_size``: the mean
        periodogram |FFT(x − recon)|² / s² over crops and channels; returns the residual
        standard deviation (grey levels)."""
        s = self.residual_power.shape[-1]
        if image.shape[-2:] != (s, s):
            raise ValueError(f"residual noise is fitted on {s}² crops, got {tuple(image.shape)}")
        recon, _ = self.decode(self.encode(image, mask)[0])
        residual = (image - recon).float()
        residual = residual - residual.mean((-2, -1), keepdim=True)
        power = torch.fft.fft2(residual).abs().square().mean((0, 1)) / (s * s)
        self.residual_power.copy_(power)
        return float(power.sum().sqrt() / s)

    def residual_noise(
        self, shape: tuple[int, ...], generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """A stationary Gaussian field (N, C, s, s) with the residuals' power spectrum: white
        noise filtered by √power in Fourier space (zeros when no noise model was fitted)."""
        dev = next(self.parameters()).device
        if not hasattr(self, "residual_power"):
            return torch.zeros(shape, device=dev)
        s = self.residual_power.shape[-1]
        if tuple(shape[-2:]) != (s, s):
            raise ValueError(f"the residual noise model is {s}² px, images are {shape[-2:]}")
        white = torch.randn(shape, generator=generator).to(dev)
        return torch.fft.ifft2(torch.fft.fft2(white) * self.residual_power.sqrt()).real

    def forward(self, image: torch.Tensor, mask: torch.Tensor):
        quantized, commitment, codes = self.encode(image, mask)
        recon, logits = self.decode(quantized)
        return recon, logits, commitment, codes
