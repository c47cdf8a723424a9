"""Segmentation study throughput: PixelCNN code-map sampling, row-cached (the vertical stack
once per row, the horizontal stack on one row per position) vs a full forward pass per position;
and seconds per training step of the embedded default's hierarchical prior (a pore level of
width 32 on 16 windows a step, 3 x 3 conditioning-map convolutions, bfloat16 where the hardware
runs it) against the variants it replaced — what the priors' 600 steps cost.

Run: ``python benchmarks/segmentation.py [--device cuda] [--maps 64] [--size 16]``. Prints
tables; never a test. The embedded default's prior: 64 codes, dim 32, 5 layers, 16 x 16 maps.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from matgen.models.pixelcnn import GatedPixelCNN
from matgen.util import limited_threads


def full_forward_sample(net: GatedPixelCNN, n: int, size: int, rows: int) -> float:
    """Seconds for the first ``rows`` rows of position-by-position sampling (rows above only)."""
    dev = net.embed.weight.device
    codes = torch.zeros(n, size, size, dtype=torch.long, device=dev)
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(rows):
            for j in range(size):
                probs = torch.softmax(net(codes[:, : i + 1])[:, :, i, j].float(), 1)
                codes[:, i, j] = torch.multinomial(probs, 1)[:, 0]
    return time.perf_counter() - start


def prior_step_seconds(
    pore_dim: int, steps: int = 10, device: str = "cpu", **variant: object
) -> float:
    """Seconds per training step of the embedded default's prior (8 random 128-px masks of three
    classes, 2-px codes, 4-px class map with pore centres; 32 windows of 16 codes a step), with a
    pore level of width ``pore_dim`` (0: none) and ``variant``'s settings (map_kernel,
    pore_map_batch_size, amp, map_context; ``pore_sizes``: the marks' size edges, px); the
    first step (warm-up) left out."""
    from matgen.inference.segmentation import code_class_counts, pore_centre_cells
    from matgen.train.segmentation import train_pixelcnn

    sizes = list(variant.pop("pore_sizes", []))
    rng = np.random.default_rng(0)
    masks = rng.choice(3, size=(8, 128, 128), p=[0.65, 0.28, 0.07]).astype(np.uint8)
    codes = rng.integers(0, 64, (8, 64, 64))
    code_counts = code_class_counts(masks, 2, 3)  # each class's pixels per code
    kw = dict(
        n_codes=64,
        steps_per_epoch=1,
        batch_size=32,
        window=16,
        dim=32,
        n_layers=5,
        kernel=5,
        lr=0.002,
        class_counts=code_counts,
        class_map_counts=code_class_counts(masks, 4, 3),
        class_map_classes=2,
        class_map_marks=pore_centre_cells(masks, 4, 2, sizes),
        class_map_mark_classes=len(sizes) + 1,
        device=device,
        show_progress=False,
        **variant,
    )
    if pore_dim:
        kw.update(pore_map=code_counts[:, 2] > 0, pore_map_dim=pore_dim)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        train_pixelcnn(codes, out / "w.pt", out / "w.csv", epochs=1, **kw)
        start = time.perf_counter()
        train_pixelcnn(codes, out / "p.pt", out / "p.csv", epochs=steps, **kw)
        return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--maps", type=int, default=64)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    with limited_threads(args.threads):
        torch.manual_seed(0)
        net = GatedPixelCNN(n_codes=64, dim=32, n_layers=5, kernel=5).to(args.device).eval()
        start = time.perf_counter()
        net.sample(args.maps, (args.size, args.size))
        cached = time.perf_counter() - start
        rows = max(1, args.size // 4)  # the cost grows with the row: scale a measured prefix
        part = full_forward_sample(net, args.maps, args.size, rows)
        full = part * sum(range(1, args.size + 1)) / sum(range(1, rows + 1))
    print(f"{'PixelCNN sampling':<28}{'maps/s':>10}{'s per map':>12}")
    for name, seconds in (("row-cached (matgen)", cached), ("full pass per position*", full)):
        print(f"{name:<28}{args.maps / seconds:>10.1f}{seconds / args.maps:>12.4f}")
    print(f"* extrapolated from the first {rows} of {args.size} rows; {args.size}² maps, "
          f"{args.threads} thread(s), {args.device}")  # fmt: skip
    cheap = dict(pore_map_batch_size=16, map_kernel=3)
    variants = {
        "two levels, float32": (0, {}),
        "pore level, float32": (32, {}),
        "+ 16 windows, 3 x 3": (32, cheap),
        "+ bfloat16 (the default)*": (32, {**cheap, "amp": True}),
        "+ map context 3, size marks*": (
            32,
            {**cheap, "amp": True, "map_context": 3, "pore_sizes": [6, 9]},
        ),
    }
    with limited_threads(args.threads):
        steps = {name: prior_step_seconds(dim, device=args.device, **kw)
                 for name, (dim, kw) in variants.items()}  # fmt: skip
    print(f"\n{'prior training':<36}{'s/step':>10}{'600 steps, s':>14}")
    for name, seconds in steps.items():
        print(f"{name:<36}{seconds:>10.3f}{600 * seconds:>14.0f}")
    print("* float32 where bfloat16 does not pay (matgen.util.bfloat16_autocast)")


if __name__ == "__main__":
    main()
