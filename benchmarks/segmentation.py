"""Segmentation study throughput: PixelCNN code-map sampling, row-cached (the vertical stack
once per row, the horizontal stack on one row per position) vs a full forward pass per position.

Run: ``python benchmarks/segmentation.py [--device cuda] [--maps 64] [--size 16]``. Prints a
table; never a test. The embedded default's prior: 64 codes, dim 32, 5 layers, 16 x 16 maps.
"""

from __future__ import annotations

import argparse
import time

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


if __name__ == "__main__":
    main()
