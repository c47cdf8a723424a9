"""Gated PixelCNN (van den Oord et al. 2016) as an autoregressive prior over VQ-VAE code maps.

Two stacks remove the blind spot of masked convolutions: the vertical stack sees every row
above the current one, the horizontal stack the pixels to the left in the current row, and the
vertical stack feeds the horizontal one. Each layer is gated, tanh(a) · σ(b). The first layer
(mask "A") excludes the current position; later layers (mask "B") may include it, because what
reaches them already excludes it. Masks are fixed buffers multiplied into the weights.

Conditional (``n_cond`` > 0, the paper's conditional gated PixelCNN): a vector per map, here
the class fractions of the window's mask, adds a learnt bias to every layer's vertical and
horizontal pre-activations, so a global property of the map is set before its first code.
With ``n_cond_map`` > 0 a map of that many channels on the code grid (a coarse class map drawn
first, as the top level of VQ-VAE-2 conditions its bottom prior) adds a bias at every position
through a small convolution that is not masked: the map is known everywhere before the first
code, so each code may look ahead at it (where a pore ends below it, say). With ``map_context``
> 0 the map first passes a small unmasked network of that many dilated 3 × 3 convolutions
(dilations 1, 2, 4, ...), shared by the layers and run once per map (sampling too), so a
position sees the map ±(2^map_context − 1) codes around it: where a pore's centre lies three
codes below the first row of its outline, and how large it is.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn


def _gate(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, 1)
    return torch.tanh(a) * torch.sigmoid(b)


def _at(bias: torch.Tensor | float, i: int, j: int | None = None) -> torch.Tensor | float:
    """A bias at row ``i`` (and column ``j``) where it is a map, whole where it is per map
    (or 0 for an unconditional layer)."""
    if not torch.is_tensor(bias):
        return bias
    if bias.shape[2] > 1:
        bias = bias[:, :, i : i + 1]
    if j is not None and bias.shape[3] > 1:
        bias = bias[:, :, :, j : j + 1]
    return bias


class GatedLayer(nn.Module):
    """One gated layer with a vertical and a horizontal stack."""

    def __init__(
        self,
        dim: int,
        kernel: int,
        first: bool,
        n_cond: int = 0,
        n_cond_map: int = 0,
        map_kernel: int = 5,
    ) -> None:
        super().__init__()
        if map_kernel % 2 == 0:
            raise ValueError(f"map_kernel {map_kernel}: an odd side keeps the map's size")
        # the condition's bias on both stacks' pre-activations (none without a condition)
        self.cond = nn.Linear(n_cond, 4 * dim) if n_cond else None
        # the conditioning map's bias: unmasked, map_kernel² (it may see below and right)
        self.cond_map = (
            nn.Conv2d(n_cond_map, 4 * dim, map_kernel, padding=map_kernel // 2)
            if n_cond_map
            else None
        )
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
        self, cond: torch.Tensor | None, cond_map: torch.Tensor | None = None
    ) -> tuple[torch.Tensor | float, torch.Tensor | float]:
        """The vertical and horizontal stacks' biases for conditions (N, n_cond) — (N, 2 dim,
        1, 1) — plus, given a conditioning map (N, n_cond_map, h, w), one per position (N,
        2 dim, h, w); 0 for an unconditional layer."""
        bias: torch.Tensor | float = 0.0
        if self.cond is not None and cond is not None:
            bias = self.cond(cond)[:, :, None, None]
        if self.cond_map is not None and cond_map is not None:
            bias = bias + self.cond_map(cond_map)
        if isinstance(bias, float):
            return 0.0, 0.0
        vb, hb = bias.chunk(2, 1)
        return vb, hb

    def forward(
        self,
        v: torch.Tensor,
        h: torch.Tensor,
        cond: torch.Tensor | None = None,
        cond_map: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        w_v, w_h = self.masked_weights()
        vb, hb = self.cond_bias(cond, cond_map)
        # row i of the vertical stack sees rows i−half .. i of v, position j of the horizontal
        # stack columns j−half .. j of h: padded above / on the left only, so no row or column
        # is computed to be cropped away
        v_pad = F.pad(v, (self.half, self.half, self.half, 0))
        v_pre = F.conv2d(v_pad, w_v, self.vertical.bias) + vb
        h_pre = F.conv2d(F.pad(h, (self.half, 0)), w_h, self.horizontal.bias) + hb
        h_new = self.h_out(_gate(h_pre + self.v_to_h(v_pre)))
        return _gate(v_pre), h + h_new if self.residual else h_new


def map_context_net(n_in: int, dim: int, depth: int) -> nn.Sequential:
    """``depth`` unmasked 3 × 3 convolutions of dilation 1, 2, 4, ... (``dim`` channels out,
    ReLU between): a conditioning map's features over ±(2^depth − 1) positions."""
    layers: list[nn.Module] = []
    for i in range(depth):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Conv2d(n_in if i == 0 else dim, dim, 3, padding=2**i, dilation=2**i))
    return nn.Sequential(*layers)


class GatedPixelCNN(nn.Module):
    """codes (N, h, w) → logits (N, n_codes, h, w), each position conditioned only on the
    positions before it in raster order (and on a vector per map when ``n_cond`` > 0, on a
    whole map of ``n_cond_map`` channels when that is > 0, through a ``map_kernel``²
    convolution in every layer — of the map's features from :func:`map_context_net` when
    ``map_context`` > 0)."""

    def __init__(
        self,
        n_codes: int,
        dim: int = 64,
        n_layers: int = 8,
        kernel: int = 5,
        n_cond: int = 0,
        n_cond_map: int = 0,
        map_kernel: int = 5,
        map_context: int = 0,
    ) -> None:
        super().__init__()
        self.n_codes, self.n_cond, self.n_cond_map = n_codes, n_cond, n_cond_map
        self.embed = nn.Embedding(n_codes, dim)
        context = n_cond_map and map_context
        self.map_net = map_context_net(n_cond_map, dim, map_context) if context else None
        n_map = dim if context else n_cond_map
        self.layers = nn.ModuleList(
            [
                GatedLayer(dim, 7 if i == 0 else kernel, i == 0, n_cond, n_map, map_kernel)
                for i in range(n_layers)
            ]  # fmt: skip
        )
        self.head = nn.Sequential(
            nn.ReLU(), nn.Conv2d(dim, dim, 1), nn.ReLU(), nn.Conv2d(dim, n_codes, 1)
        )

    def forward(
        self,
        codes: torch.Tensor,
        cond: torch.Tensor | None = None,
        cond_map: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = self.embed(codes).permute(0, 3, 1, 2)
        v, h = x, x
        cond_map = self.map_features(cond_map)
        for layer in self.layers:
            v, h = layer(v, h, cond, cond_map)
        return self.head(h)

    def map_features(self, cond_map: torch.Tensor | None) -> torch.Tensor | None:
        """What the layers' map convolutions read: the conditioning map, or its features."""
        if self.map_net is None or cond_map is None:
            return cond_map
        return self.map_net(cond_map)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        shape: tuple[int, int],
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        cond: torch.Tensor | None = None,
        cond_map: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``n`` code maps, drawn position by position in raster order (given conditions
        ``cond`` (n, n_cond) and a conditioning map ``cond_map`` (n, n_cond_map, rows, cols)
        where the prior takes them).

        Each layer's output at a position depends on its input at the last ``half + 1`` rows
        (vertical stack) or columns (horizontal stack) only, and those inputs are known before
        the position is drawn; so every layer's inputs are kept (zero-padded as in the
        forward pass) and each new position computes one row per layer per row drawn
        (vertical) and one column per layer (horizontal): the same logits as a forward pass
        over the whole map, at a cost that does not grow with the map. At one position the
        horizontal stack and the head are matrix products on (n, channels): a convolution
        call there cost ~10x its arithmetic.
        """
        dev = self.embed.weight.device
        rows, cols = shape
        codes = torch.zeros(n, rows, cols, dtype=torch.long, device=dev)
        dim = self.embed.embedding_dim
        layers = list(self.layers)
        if self.n_cond and cond is None:
            raise ValueError("a conditional PixelCNN samples given its conditions (cond)")
        if self.n_cond_map and (cond_map is None or tuple(cond_map.shape[-2:]) != shape):
            raise ValueError(f"a map-conditioned PixelCNN samples given a {shape} cond_map")
        cond = cond.to(dev) if cond is not None else None
        cond_map = self.map_features(cond_map.to(dev)) if cond_map is not None else None
        # masked once, not per step; the horizontal weights (2 dim, dim, 1, half + 1) as a
        # matrix over a window stored column-major (half + 1, dim), the 1 x 1 ones as matrices
        w_v, w_h = zip(*(layer.masked_weights() for layer in layers))
        w_h = [w[:, :, 0].transpose(1, 2).flatten(1) for w in w_h]
        w_out = [layer.h_out.weight[:, :, 0, 0] for layer in layers]
        head = [m for m in self.head if isinstance(m, nn.Conv2d)]  # ReLU, 1 x 1, ReLU, 1 x 1
        # biases (n, 2 dim, 1 or rows, 1 or cols), or 0: sliced at the row drawn
        vb, hb = zip(*(layer.cond_bias(cond, cond_map) for layer in layers))
        # each layer's vertical-stack input, padded by its half above; row r at r + half
        v_in = [torch.zeros(n, dim, rows + layer.half, cols, device=dev) for layer in layers]
        for i in range(rows):
            # what the horizontal stack adds at each column of row i, (n, cols, 2 dim):
            # the vertical stack's part, its own bias and the conditions' bias there
            h_add = []
            for k, layer in enumerate(layers):
                window = v_in[k][:, :, i : i + layer.half + 1]  # rows i - half .. i
                v_pre = F.conv2d(window, w_v[k], layer.vertical.bias, padding=(0, layer.half))
                v_pre = v_pre + _at(vb[k], i)
                add = layer.v_to_h(v_pre) + _at(hb[k], i) + layer.horizontal.bias[:, None, None]
                h_add.append(add[:, :, 0].transpose(1, 2).contiguous())
                if k + 1 < len(layers):
                    v_in[k + 1][:, :, i + layers[k + 1].half] = _gate(v_pre)[:, :, 0]
            # each layer's horizontal-stack input along row i, padded by its half on the left,
            # (n, cols + half, dim): a window of half + 1 columns is one row of a matrix
            h_in = [torch.zeros(n, cols + layer.half, dim, device=dev) for layer in layers]
            for j in range(cols):
                for k, layer in enumerate(layers):
                    window = h_in[k][:, j : j + layer.half + 1]  # columns j - half .. j
                    h_pre = torch.addmm(h_add[k][:, j], window.flatten(1), w_h[k].t())
                    h = F.linear(_gate(h_pre), w_out[k], layer.h_out.bias)
                    h = window[:, -1] + h if layer.residual else h
                    if k + 1 < len(layers):
                        h_in[k + 1][:, j + layers[k + 1].half] = h
                hidden = F.linear(F.relu(h), head[0].weight[:, :, 0, 0], head[0].bias)
                logits = F.linear(F.relu(hidden), head[1].weight[:, :, 0, 0], head[1].bias)
                probs = torch.softmax(logits.float() / temperature, 1)
                draw = torch.multinomial(probs.cpu(), 1, generator=generator)[:, 0]
                codes[:, i, j] = draw.to(dev)
                h_in[0][:, j + layers[0].half] = self.embed(codes[:, i, j])
            v_in[0][:, :, i + layers[0].half] = self.embed(codes[:, i]).permute(0, 2, 1)
        return codes


def with_pore_map(cond_map: torch.Tensor, pores: torch.Tensor, symbols: int = 2) -> torch.Tensor:
    """The code prior's conditioning map (N, C, h, w) with a pore map (N, h, w; 1 = a pore
    code, or which of a code's pixels are pore as a number below ``symbols``) appended as
    ``symbols`` one-hot channels."""
    one_hot = F.one_hot(pores.long(), symbols).permute(0, 3, 1, 2).to(cond_map)
    return torch.cat([cond_map, one_hot], 1)


def class_map_condition(class_map: torch.Tensor, n_classes: int, cell: int) -> torch.Tensor:
    """A class map (N, h, w) of ``cell``-code cells as the code prior's conditioning map: one
    channel per class, each cell repeated over its ``cell`` × ``cell`` codes."""
    one_hot = F.one_hot(class_map.long(), n_classes).permute(0, 3, 1, 2).float()
    return one_hot.repeat_interleave(cell, 2).repeat_interleave(cell, 3)


class HierarchicalPrior(nn.Module):
    """A coarse class map first, then the codes given it (the hierarchy of VQ-VAE-2, with
    mask classes as the top level): ``top`` draws a map of ``n_classes`` classes, one per
    ``cell`` × ``cell`` codes, whose low entropy lets a small network learn phase shapes over a
    wider field; ``bottom`` draws the codes, seeing the whole class map (ahead of it too).

    ``pore_dim`` > 0: a middle level of that width, ``pores``, draws which codes hold pores (a
    binary map on the code grid) given the class map, and the codes see both maps. Two
    symbols a position instead of ``n_codes`` let a small network learn whole round outlines;
    the code level then only has to fill them. Every level is conditioned on the map's class
    fractions (``n_cond``) and trains teacher-forced on the real maps, each on its own
    windows. ``map_kernel``: the side of the levels' conditioning-map convolutions (3 costs
    a fifth of a masked convolution, 5 half of one); ``map_context``: the depth of the
    network each level reads its map through (:func:`map_context_net`; 0: none);
    ``pore_symbols``: 2 (a code holds pore pixels or not) or 2^(d²) for d-px codes (which of
    its pixels are pore: the outline to the pixel, drawn by the pore level)."""

    LEVELS = ("class_map", "pores", "codes")  # what ``sample``'s level_temperature may name

    def __init__(
        self,
        n_codes: int,
        n_classes: int,
        cell: int,
        dim: int = 64,
        n_layers: int = 8,
        kernel: int = 5,
        n_cond: int = 0,
        pore_dim: int = 0,
        map_kernel: int = 5,
        map_context: int = 0,
        pore_symbols: int = 2,
    ) -> None:
        super().__init__()
        self.n_classes, self.cell, self.pore_dim = n_classes, cell, pore_dim
        self.pore_symbols = pore_symbols
        self.top = GatedPixelCNN(n_classes, dim, n_layers, kernel, n_cond)
        self.pores = (
            GatedPixelCNN(
                pore_symbols, pore_dim, n_layers, kernel, n_cond, n_classes, map_kernel, map_context
            )  # fmt: skip
            if pore_dim
            else None
        )
        n_map = n_classes + (pore_symbols if pore_dim else 0)
        self.bottom = GatedPixelCNN(n_codes, dim, n_layers, kernel, n_cond, n_map, map_kernel,
                                    map_context)  # fmt: skip
        self.n_codes, self.n_cond = n_codes, n_cond

    @torch.no_grad()
    def sample(
        self,
        n: int,
        shape: tuple[int, int],
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        cond: torch.Tensor | None = None,
        level_temperature: Mapping[str, float] | None = None,
    ) -> torch.Tensor:
        """``n`` code maps of ``shape`` (multiples of ``cell``): a class map, (the pore map,)
        then the codes. ``level_temperature``: a factor on ``temperature`` per level
        (``class_map``, ``pores``, ``codes``; 1 where not given)."""
        factors = dict(level_temperature or {})
        unknown = set(factors) - set(self.LEVELS)
        if unknown:
            raise ValueError(f"level temperatures for {sorted(unknown)}: the levels are "
                             f"{', '.join(self.LEVELS)}")  # fmt: skip
        t = {level: temperature * factors.get(level, 1.0) for level in self.LEVELS}
        rows, cols = shape
        if rows % self.cell or cols % self.cell:
            raise ValueError(f"a {shape} code map is not whole {self.cell}-code class-map cells")
        top_shape = (rows // self.cell, cols // self.cell)
        class_map = self.top.sample(n, top_shape, t["class_map"], generator, cond)
        cond_map = class_map_condition(class_map, self.n_classes, self.cell)
        if self.pores is not None:
            pores = self.pores.sample(n, shape, t["pores"], generator, cond, cond_map)
            cond_map = with_pore_map(cond_map, pores, self.pore_symbols)
        return self.bottom.sample(n, shape, t["codes"], generator, cond, cond_map)
