"""Adaptive discriminator augmentation (ADA; Karras et al., NeurIPS 2020), written from the paper.

Every image shown to the discriminator, real or generated, goes through the same random,
differentiable pipeline, each operation applied with probability ``p``. Because the generator
is trained through the augmentation as well, it learns the un-augmented distribution as long as
the augmentations do not "leak" (p below ~0.8). ``p`` is tuned during training from an overfitting
heuristic, r_t = E[sign(D(real))], pushed towards a target of 0.6.

Operations (grey or multi-channel micrographs, values centred on 0):
geometric — x-flip, rotation by multiples of 90°, integer translation (≤ 1/8 of the size),
isotropic scaling (log2-normal, σ 0.2), arbitrary rotation; all composed into one affine map and
resampled once (bilinear, reflection padding);
colour — brightness (additive, σ 0.2), contrast (log2-normal, σ 0.5);
cutout — a square of half the image size zeroed;
roll — a circular shift by a uniform whole-pixel offset, for periodic microstructures (RVEs), where
it keeps every label: the image border can then sit anywhere, so D cannot police it, but a
generated image that is not seamless shows its seam inside the frame. Not in the default set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

AUGMENTATIONS = (
    "xflip",
    "rot90",
    "translate",
    "scale",
    "rotate",
    "brightness",
    "contrast",
    "cutout",
)
PERIODIC_AUGMENTATIONS = ("roll",)
ALL_AUGMENTATIONS = AUGMENTATIONS + PERIODIC_AUGMENTATIONS


def check_augment_ops(
    ops: list[str] | tuple[str, ...] | None, allowed: tuple[str, ...], key: str
) -> tuple[str, ...]:
    """``ops`` as a tuple (``allowed`` when ``None``); a one-line :class:`InputError` naming the
    config ``key`` for an operation not in ``allowed``, before any data is loaded."""
    from ..errors import InputError

    ops = tuple(allowed if ops is None else ops)
    unknown = sorted(set(ops) - set(allowed))
    if unknown:
        raise InputError(f"unknown {key} {unknown}; choose from {list(allowed)}")
    return ops


def augment(images: torch.Tensor, p: float, ops: tuple[str, ...] = AUGMENTATIONS) -> torch.Tensor:
    """Augment a batch (N, C, H, W) with each operation of ``ops`` applied with probability ``p``.

    Differentiable with respect to ``images``; uses torch's global random generator (seeded per
    process). ``p == 0`` returns the input unchanged.
    """
    unknown = set(ops) - set(ALL_AUGMENTATIONS)
    if unknown:
        raise ValueError(
            f"unknown augmentations {sorted(unknown)}; choose from {ALL_AUGMENTATIONS}"
        )
    if p <= 0:
        return images
    n, c, h, w = images.shape
    dev = images.device

    def chosen() -> torch.Tensor:
        return torch.rand(n, device=dev) < p

    if "roll" in ops:
        on = chosen()
        shift = [torch.where(on, torch.randint(0, size, (n,), device=dev), 0) for size in (h, w)]
        # out[i] = x[(i - shift) mod size], as torch.roll, with one shift per image
        rows = (torch.arange(h, device=dev)[None] - shift[0][:, None]) % h
        cols = (torch.arange(w, device=dev)[None] - shift[1][:, None]) % w
        images = images.gather(2, rows[:, None, :, None].expand(n, c, h, w))
        images = images.gather(3, cols[:, None, None, :].expand(n, c, h, w))

    eye = torch.eye(3, device=dev).repeat(n, 1, 1)
    matrix = eye.clone()
    geometric = False
    if "xflip" in ops:
        flip = chosen() & (torch.rand(n, device=dev) < 0.5)
        m = eye.clone()
        m[:, 0, 0] = torch.where(flip, -1.0, 1.0)
        matrix, geometric = matrix @ m, True
    if "rot90" in ops:
        k = torch.where(chosen(), torch.randint(0, 4, (n,), device=dev), 0).float()
        matrix, geometric = matrix @ _rotation(k * math.pi / 2), True
    if "translate" in ops:
        # Whole pixels: normalised coordinates span 2 units across W (or H) pixels.
        t = torch.round(
            (torch.rand(n, 2, device=dev) * 2 - 1) * 0.125 * torch.tensor([w, h], device=dev)
        )
        t = torch.where(chosen()[:, None], t, 0.0) * 2 / torch.tensor([w, h], device=dev)
        m = eye.clone()
        m[:, :2, 2] = t
        matrix, geometric = matrix @ m, True
    if "scale" in ops:
        s = torch.where(chosen(), torch.exp2(torch.randn(n, device=dev) * 0.2), 1.0)
        m = eye.clone()
        m[:, 0, 0], m[:, 1, 1] = s, s
        matrix, geometric = matrix @ m, True
    if "rotate" in ops:
        theta = torch.where(chosen(), (torch.rand(n, device=dev) * 2 - 1) * math.pi, 0.0)
        matrix, geometric = matrix @ _rotation(theta), True
    x = images
    if geometric:
        grid = F.affine_grid(matrix[:, :2].to(x.dtype), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if "brightness" in ops:
        b = torch.where(chosen(), torch.randn(n, device=dev) * 0.2, 0.0)
        x = x + b[:, None, None, None].to(x.dtype)
    if "contrast" in ops:
        s = torch.where(chosen(), torch.exp2(torch.randn(n, device=dev) * 0.5), 1.0)
        x = x * s[:, None, None, None].to(x.dtype)
    if "cutout" in ops:
        centre = torch.rand(n, 2, 1, 1, device=dev)
        yy = (torch.arange(h, device=dev) + 0.5)[None, :, None] / h
        xx = (torch.arange(w, device=dev) + 0.5)[None, None, :] / w
        inside = ((xx - centre[:, 0]).abs() < 0.25) & ((yy - centre[:, 1]).abs() < 0.25)
        inside = inside & chosen()[:, None, None]
        x = x * (~inside)[:, None].to(x.dtype)
    return x


def _rotation(theta: torch.Tensor) -> torch.Tensor:
    m = torch.eye(3, device=theta.device).repeat(len(theta), 1, 1)
    cos, sin = torch.cos(theta), torch.sin(theta)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = cos, -sin, sin, cos
    return m


@dataclass
class AdaptiveProbability:
    """The ADA controller: every ``interval`` steps move p by ±(batch·interval)/(kimg·1000) towards
    r_t = E[sign(D(real))] = ``target``; p can go from 0 to 1 in ``kimg`` thousand images.

    Feed it the summed signs and counts of D's outputs on reals (already summed over processes
    when training data-parallel) through :meth:`accumulate`; :meth:`update` adjusts p.
    """

    target: float = 0.6
    interval: int = 4
    kimg: float = 500.0
    p: float = 0.0
    rt: float = 0.0
    _sign_sum: float = 0.0
    _count: float = 0.0

    def accumulate(self, sign_sum: float, count: float) -> None:
        self._sign_sum += float(sign_sum)
        self._count += float(count)

    def update(self, step: int, batch_size: int) -> None:
        """Adjust p when ``step`` closes an interval (call once per training step)."""
        if (step + 1) % self.interval or self._count == 0:
            return
        self.rt = self._sign_sum / self._count
        adjust = ((self.rt > self.target) - (self.rt < self.target)) * batch_size * self.interval
        self.p = min(max(self.p + adjust / (self.kimg * 1000), 0.0), 1.0)
        self._sign_sum = self._count = 0.0

    def state_dict(self) -> dict[str, float]:
        return {"p": self.p, "rt": self.rt, "sign_sum": self._sign_sum, "count": self._count}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.p, self.rt = float(state["p"]), float(state["rt"])
        self._sign_sum, self._count = float(state["sign_sum"]), float(state["count"])
