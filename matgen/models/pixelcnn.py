"""Gated PixelCNN (van den Oord et al. 2016) as an autoregressive prior over VQ-VAE code maps.

Two stacks remove the blind spot of masked convolutions: the vertical stack sees every row
above the current one, the horizontal stack the pixels to the left in the current row, and the
vertical stack feeds the horizontal one. Each layer is gated, tanh(a) · σ(b). The first layer
(mask "A") excludes the current position; later layers (mask "B") may include it, because what
reaches them already excludes it. Masks are fixed buffers multiplied into the weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _gate(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, 1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    """One gated layer with a vertical and a horizontal stack."""

    def __init__(self, dim: int, kernel: int, first: bool) -> None:
        super().__init__()
        half = kernel // 2
        self.half = half
        # vertical: rows i−half .. i (the last one masked for the first layer), all columns
        self.vertical = nn.Conv2d(dim, 2 * dim, (half + 1, kernel), padding=(half, half))
        # horizontal: columns j−half .. j of row i (the last one masked for the first layer)
        self.horizontal = nn.Conv2d(dim, 2 * dim, (1, half + 1), padding=(0, half))
        self.v_to_h = nn.Conv2d(2 * dim, 2 * dim, 1)
        self.h_out = nn.Conv2d(dim, dim, 1)
        v_mask = torch.ones_like(self.vertical.weight)
        h_mask = torch.ones_like(self.horizontal.weight)
        if first:
            v_mask[:, :, -1] = 0
            h_mask[:, :, :, -1] = 0
        self.register_buffer("v_mask", v_mask)
        self.register_buffer("h_mask", h_mask)
        self.residual = not first

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = v.shape[-2:]
        v_pre = F.conv2d(
            v,
            self.vertical.weight * self.v_mask,
            self.vertical.bias,
            padding=(self.half, self.half),
        )[:, :, :height]
        h_pre = F.conv2d(
            h, self.horizontal.weight * self.h_mask, self.horizontal.bias, padding=(0, self.half)
        )[:, :, :, :width]
        h_new = self.h_out(_gate(h_pre + self.v_to_h(v_pre)))
        return _gate(v_pre), (h + h_new if self.residual else h_new)


class GatedPixelCNN(nn.Module):
    """codes (N, h, w) → logits (N, n_codes, h, w), each position conditioned only on the
    positions before it in raster order."""

    def __init__(self, n_codes: int, dim: int = 64, n_layers: int = 8, kernel: int = 5) -> None:
        super().__init__()
        self.n_codes = n_codes
        self.embed = nn.Embedding(n_codes, dim)
        self.layers = nn.ModuleList(
            [GatedLayer(dim, 7 if i == 0 else kernel, first=i == 0) for i in range(n_layers)]
        )
        self.head = nn.Sequential(
            nn.ReLU(), nn.Conv2d(dim, dim, 1), nn.ReLU(), nn.Conv2d(dim, n_codes, 1)
        )

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        x = self.embed(codes).permute(0, 3, 1, 2)
        v, h = x, x
        for layer in self.layers:
            v, h = layer(v, h)
        return self.head(h)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        shape: tuple[int, int],
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``n`` code maps, drawn position by position (one batched forward pass per position)."""
        dev = self.embed.weight.device
        codes = torch.zeros(n, *shape, dtype=torch.long, device=dev)
        for i in range(shape[0]):
            for j in range(shape[1]):
                # rows below i cannot influence position (i, j) (causal stacks): skip them
                logits = self(codes[:, : i + 1])[:, :, i, j] / temperature
                probs = torch.softmax(logits.float(), 1)
                codes[:, i, j] = torch.multinomial(probs.cpu(), 1, generator=generator)[:, 0].to(
                    dev
                )
        return codes
