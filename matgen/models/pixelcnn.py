"""Gated PixelCNN (van den Oord et al. 2016) as an autoregressive prior over VQ-VAE code maps.

Two stacks remove the blind spot of masked convolutions: the vertical stack sees every row
above the current one, the horizontal stack the pixels to the left in the current row, and the
vertical stack feeds the horizontal one. Each layer is gated, tanh(a) · σ(b). The first layer
(mask "A") excludes the current position; later layers (mask "B") may include it, because what
reaches them already excludes it. Masks are fixed buffers multiplied into the weights.

Conditional (``n_cond`` > 0, the paper's conditional gated PixelCNN): a vector per map, here
the class fractions of the window's mask, adds a learnt bias to every layer's vertical and
horizontal pre-activations, so a global property of the map is set before its first code.
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

    def __init__(self, dim: int, kernel: int, first: bool, n_cond: int = 0) -> None:
        super().__init__()
        # the condition's bias on both stacks' pre-activations (none without a condition)
        self.cond = nn.Linear(n_cond, 4 * dim) if n_cond else None
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

    def cond_bias(
        self, cond: torch.Tensor | None
    ) -> tuple[torch.Tensor | float, torch.Tensor | float]:
        """The vertical and horizontal stacks' biases (N, 2 dim, 1, 1) for conditions (N,
        n_cond); 0 for an unconditional layer."""
        if self.cond is None or cond is None:
            return 0.0, 0.0
        vb, hb = self.cond(cond)[:, :, None, None].chunk(2, 1)
        return vb, hb

    def horizontal_out(
        self, h_pre: torch.Tensor, v_to_h: torch.Tensor, h: torch.Tensor
    ) -> torch.Tensor:
        """The horizontal stack's output at some positions from its pre-activation there, the
        vertical stack's contribution (``v_to_h`` of its pre-activation) and the input ``h``
        there (the residual): position-local, so the sampler can run one column alone."""
        h_new = self.h_out(_gate(h_pre + v_to_h))
        return h + h_new if self.residual else h_new

    def forward(
        self, v: torch.Tensor, h: torch.Tensor, cond: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        w_v, w_h = self.masked_weights()
        vb, hb = self.cond_bias(cond)
        # row i of the vertical stack sees rows i−half .. i of v, position j of the horizontal
        # stack columns j−half .. j of h: padded above / on the left only, so no row or column
        # is computed to be cropped away
        v_pad = F.pad(v, (self.half, self.half, self.half, 0))
        v_pre = F.conv2d(v_pad, w_v, self.vertical.bias) + vb
        h_pre = F.conv2d(F.pad(h, (self.half, 0)), w_h, self.horizontal.bias) + hb
        return _gate(v_pre), self.horizontal_out(h_pre, self.v_to_h(v_pre), h)


class GatedPixelCNN(nn.Module):
    """codes (N, h, w) → logits (N, n_codes, h, w), each position conditioned only on the
    positions before it in raster order (and on a vector per map when ``n_cond`` > 0)."""

    def __init__(
        self, n_codes: int, dim: int = 64, n_layers: int = 8, kernel: int = 5, n_cond: int = 0
    ) -> None:
        super().__init__()
        self.n_codes, self.n_cond = n_codes, n_cond
        self.embed = nn.Embedding(n_codes, dim)
        self.layers = nn.ModuleList(
            [
                GatedLayer(dim, 7 if i == 0 else kernel, first=i == 0, n_cond=n_cond)
                for i in range(n_layers)
            ]  # fmt: skip
        )
        self.head = nn.Sequential(
            nn.ReLU(), nn.Conv2d(dim, dim, 1), nn.ReLU(), nn.Conv2d(dim, n_codes, 1)
        )

    def forward(self, codes: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        x = self.embed(codes).permute(0, 3, 1, 2)
        v, h = x, x
        for layer in self.layers:
            v, h = layer(v, h, cond)
        return self.head(h)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        shape: tuple[int, int],
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``n`` code maps, drawn position by position in raster order (given conditions
        ``cond`` (n, n_cond) for a conditional prior).

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
        if self.n_cond and cond is None:
            raise ValueError("a conditional PixelCNN samples given its conditions (cond)")
        cond = cond.to(dev) if cond is not None else None
        vb, hb = zip(*(layer.cond_bias(cond) for layer in layers))
        # each layer's vertical-stack input, padded by its half above; row r at r + half
        v_in = [torch.zeros(n, dim, rows + layer.half, cols, device=dev) for layer in layers]
        for i in range(rows):
            v_to_h = []
            for k, layer in enumerate(layers):
                window = v_in[k][:, :, i : i + layer.half + 1]  # rows i - half .. i
                v_pre = (
                    F.conv2d(window, w_v[k], layer.vertical.bias, padding=(0, layer.half)) + vb[k]
                )
                v_to_h.append(layer.v_to_h(v_pre))
                if k + 1 < len(layers):
                    v_in[k + 1][:, :, i + layers[k + 1].half] = _gate(v_pre)[:, :, 0]
            # each layer's horizontal-stack input along row i, padded by its half on the left
            h_in = [torch.zeros(n, dim, 1, cols + layer.half, device=dev) for layer in layers]
            for j in range(cols):
                for k, layer in enumerate(layers):
                    window = h_in[k][:, :, :, j : j + layer.half + 1]  # columns j - half .. j
                    h_pre = F.conv2d(window, w_h[k], layer.horizontal.bias) + hb[k]
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
