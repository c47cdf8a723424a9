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

    def masked_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The vertical and horizontal convolutions' weights with their causal masks applied."""
        return self.vertical.weight * self.v_mask, self.horizontal.weight * self.h_mask

    def horizontal_out(
        self, h_pre: torch.Tensor, v_to_h: torch.Tensor, h: torch.Tensor
    ) -> torch.Tensor:
        """The horizontal stack's output at some positions from its pre-activation there, the
        vertical stack's contribution (``v_to_h`` of its pre-activation) and the input ``h``
        there (the residual): position-local, so the sampler can run one column alone."""
        h_new = self.h_out(_gate(h_pre + v_to_h))
        return h + h_new if self.residual else h_new

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w_v, w_h = self.masked_weights()
        # row i of the vertical stack sees rows i−half .. i of v, position j of the horizontal
        # stack columns j−half .. j of h: padded above / on the left only, so no row or column
        # is computed to be cropped away
        v_pre = F.conv2d(F.pad(v, (self.half, self.half, self.half, 0)), w_v, self.vertical.bias)
        h_pre = F.conv2d(F.pad(h, (self.half, 0)), w_h, self.horizontal.bias)
        return _gate(v_pre), self.horizontal_out(h_pre, self.v_to_h(v_pre), h)


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
        """``n`` code maps, drawn position by position in raster order.

        Each layer's output at a position depends on its input at the last ``half + 1`` rows
        (vertical stack) or columns (horizontal stack) only, and those inputs are known before
        the position is drawn; so every layer's inputs are kept (zero-padded as in the
        forward pass) and each new position computes one row per layer per row drawn
        (vertical) and one column per layer (horizontal): the same logits as a forward pass
        over the whole map, at a cost that does not grow with the map.
        """
        dev = self.embed.weight.device
        rows, cols = shape
        codes = torch.zeros(n, rows, cols, dtype=torch.long, device=dev)
        dim = self.embed.embedding_dim
        layers = list(self.layers)
        w_v, w_h = zip(*(layer.masked_weights() for layer in layers))  # masked once, not per step
        # each layer's vertical-stack input, padded by its half above; row r at r + half
        v_in = [torch.zeros(n, dim, rows + layer.half, cols, device=dev) for layer in layers]
        for i in range(rows):
            v_to_h = []
            for k, layer in enumerate(layers):
                window = v_in[k][:, :, i : i + layer.half + 1]  # rows i - half .. i
                v_pre = F.conv2d(window, w_v[k], layer.vertical.bias, padding=(0, layer.half))
                v_to_h.append(layer.v_to_h(v_pre))
                if k + 1 < len(layers):
                    v_in[k + 1][:, :, i + layers[k + 1].half] = _gate(v_pre)[:, :, 0]
            # each layer's horizontal-stack input along row i, padded by its half on the left
            h_in = [torch.zeros(n, dim, 1, cols + layer.half, device=dev) for layer in layers]
            for j in range(cols):
                for k, layer in enumerate(layers):
                    window = h_in[k][:, :, :, j : j + layer.half + 1]  # columns j - half .. j
                    h_pre = F.conv2d(window, w_h[k], layer.horizontal.bias)
                    h = layer.horizontal_out(h_pre, v_to_h[k][:, :, :, j : j + 1], window[..., -1:])
                    if k + 1 < len(layers):
                        h_in[k + 1][:, :, :, j + layers[k + 1].half] = h[:, :, :, 0]
                logits = self.head(h)[:, :, 0, 0] / temperature
                probs = torch.softmax(logits.float(), 1)
                draw = torch.multinomial(probs.cpu(), 1, generator=generator)[:, 0]
                codes[:, i, j] = draw.to(dev)
                h_in[0][:, :, 0, j + layers[0].half] = self.embed(codes[:, i, j])
            v_in[0][:, :, i + layers[0].half] = self.embed(codes[:, i]).permute(0, 2, 1)
        return codes
