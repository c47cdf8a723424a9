"""StyleGAN2-ADA and CycleGAN throughput: training images/s (G+D, full loop with lazy R1,
path-length regularisation, ADA and EMA) and sampling images/s, per resolution.

Run: ``make bench`` or ``python benchmarks/porous_gan.py [--device cuda] [--paper]``.
Prints a table; never a test. ``--paper`` adds NVlabs' 256² "paper256" network (channel base
16384, 512 max, mapping 8, batch 64) for comparison with their published 12.53 s/kimg on one A100
(stylegan2-ada-pytorch README) — only meaningful on a GPU. ``--amp both`` (the default) times
every training loop with and without bfloat16 autocast where it pays (CUDA,
AMX CPUs, AMD ones with AVX512-BF16; the ``bf16`` column).
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np


def train_rate(
    tiles: Path, out: Path, steps: int, warmup: int, batch: int, device: str, **model
) -> float:
    """Images/s of the StyleGAN2-ADA loop between step ``warmup`` and step ``steps``."""
    from matgen.train.stylegan2 import train_stylegan2

    marks: dict[int, float] = {}

    def clock(step: int, state: dict) -> None:
        if step in (warmup, steps):
            if device.startswith("cuda"):
                import torch

                torch.cuda.synchronize()
            marks[step] = time.perf_counter()

    train_stylegan2(
        tiles,
        out / "m.pt",
        out / "log.csv",
        total_kimg=steps * batch / 1000,
        batch_size=batch,
        checkpoint_kimg=1e9,
        log_every=10**9,
        device=device,
        show_progress=False,
        on_step=clock,
        ada_kimg=1.0,
        **model,
    )
    return (steps - warmup) * batch / (marks[steps] - marks[warmup])


def sample_rate(resolution: int, n: int, batch: int, device: str, **model) -> float:
    import torch

    from matgen.inference.stylegan2 import generate
    from matgen.models.stylegan2 import Generator

    G = Generator(resolution, **model).to(device).eval()
    generate(G, np.arange(batch), batch)  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    generate(G, np.arange(n), batch)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t)


def cyclegan_rate(
    low: int, scale: int, steps: int, batch: int, device: str, tmp: Path, **model
) -> float:
    from matgen.train.cyclegan import train_cyclegan

    rng = np.random.default_rng(0)
    np.save(tmp / "low.npy", rng.random((32, 1, low, low)).astype(np.float16))
    np.save(tmp / "high.npy", rng.random((32, 1, low * scale, low * scale)).astype(np.float16))
    marks: dict[int, float] = {}
    warmup = max(1, steps // 4)

    def clock(step: int, nets: dict) -> None:
        if step in (warmup, steps):
            marks[step] = time.perf_counter()

    train_cyclegan(
        tmp / "low.npy",
        tmp / "high.npy",
        tmp / "c.pt",
        tmp / "c.csv",
        steps=steps,
        batch_size=batch,
        checkpoint_every=10**9,
        log_every=10**9,
        device=device,
        show_progress=False,
        on_step=clock,
        **model,
    )
    return (steps - warmup) * batch / (marks[steps] - marks[warmup])


def main() -> None:
    import torch

    from matgen.util import bfloat16_autocast, select_device

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--channel-base", type=int, default=1024, help="CPU-sized default")
    parser.add_argument("--channel-max", type=int, default=128)
    parser.add_argument("--samples", type=int, default=128)
    parser.add_argument("--paper", action="store_true", help="add NVlabs' paper256 network")
    parser.add_argument(
        "--amp",
        choices=["on", "off", "both"],
        default="both",
        help="bfloat16 autocast where it pays (matgen.util.bfloat16_autocast)",
    )
    args = parser.parse_args()
    device = str(select_device(args.device))
    amps = {"on": [True], "off": [False], "both": [True, False]}[args.amp]
    if not bfloat16_autocast(torch.device(device), True):
        amps = [False]  # bfloat16 does not pay here: amp would time float32 twice
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        configs = [
            (
                "cpu-sized",
                res,
                dict(
                    z_dim=64,
                    w_dim=64,
                    n_mapping=2,
                    channel_base=args.channel_base,
                    channel_max=args.channel_max,
                ),
                args.batch,
            )
            for res in args.resolutions
        ]
        if args.paper:
            configs.append(
                (
                    "paper256",
                    256,
                    dict(z_dim=512, w_dim=512, n_mapping=8, channel_base=16384, channel_max=512),
                    64,
                )
            )
        for (name, res, model, batch), amp in itertools.product(configs, amps):
            tiles = tmp / f"tiles{res}.npy"
            np.save(
                tiles,
                np.random.default_rng(0).random((max(64, batch), 1, res, res)).astype(np.float16),
            )
            train = train_rate(
                tiles, tmp, args.steps, max(2, args.steps // 4), batch, device, amp=amp, **model
            )
            sample = (  # sampling runs in float32 either way: timed once
                sample_rate(res, args.samples, 32, device, **model)
                if amp == amps[0]
                else float("nan")
            )
            rows.append(
                (f"StyleGAN2-ADA {name}", f"{res}²", batch, amp, train, 1000 / train, sample)
            )
        cyclegans = [
            (f"CycleGAN ngf16 ×{scale}", low, scale, dict(n_blocks=3, n_downsampling=1))
            for low, scale in ((16, 4), (64, 4))
        ] + [  # the STEM study's: U-Net generators and Fourier discriminators
            ("CycleGAN U-Net + Fourier", 64, 1, dict(generator="unet", fourier=True,
                                                    n_downsampling=3)),
        ]  # fmt: skip
        for (name, low, scale, model), amp in itertools.product(cyclegans, amps):
            rate = cyclegan_rate(low, scale, 8, 4, device, tmp, ngf=16, ndf=16, amp=amp, **model)
            nan = float("nan")
            rows.append((name, f"{low}²→{low * scale}²", 4, amp, rate, nan, nan))
    print(f"device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(
        f"{'model':<28} {'size':>10} {'batch':>5} {'bf16':>5} {'train img/s':>12} "
        f"{'s/kimg':>9} {'sample img/s':>13}"
    )
    for name, size, batch, amp, train, skimg, sample in rows:
        bf16 = "yes" if amp else "no"  # amps holds True only where bfloat16 is native
        print(
            f"{name:<28} {size:>10} {batch:>5} {bf16:>5} {train:>12.1f} {skimg:>9.1f} "
            f"{sample:>13.1f}"
        )
    if args.paper:
        print("NVlabs stylegan2-ada-pytorch, paper256 on 1x A100: 12.53 s/kimg (published)")


if __name__ == "__main__":
    main()
