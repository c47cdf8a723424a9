"""STEM study throughput: ADF-STEM simulation images/s (vectorised: splat + FFT convolution),
CycleGAN (U-Net generators + Fourier discriminators) training images/s, and vacancy-detector
inference megapixels/s with and without the 8-fold D4 test-time augmentation.

Run: ``python benchmarks/stem.py [--device cuda] [--paper]``. Prints a table; never a test.
``--paper`` adds the paper sizes (1024² images, 256² CycleGAN tiles, ngf 64) — GPU only.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np

from matgen.util import bfloat16_autocast, limited_threads

OPTICS = dict(
    vacancy_probability=0.03,
    kv=80.0,
    aperture_mrad=25.0,
    defocus=(-20.0, 20.0),
    cs_um=(0.0, 10.0),
    source_fwhm=0.6,
)
EXP = dict(
    shear=0.02,
    jitter_rms=0.15,
    jitter_correlation=0.5,
    background=0.15,
    contamination=0.08,
    contamination_signal=0.8,
    readout_rms=2.0,
    readout_length_px=1.5,
)


def simulation_rate(size: int, n: int, degrade: bool) -> float:
    from matgen.synth.stem import simulate_image

    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(n):
        simulate_image(
            size,
            0.2,
            rng,
            **OPTICS,
            counts_per_pixel=20.0 if degrade else None,
            degrade=EXP if degrade else None,
        )
    return n / (time.perf_counter() - start)


def cyclegan_rate(
    tmp: Path, tile: int, ngf: int, depth: int, batch: int, steps: int, device: str
) -> float:
    from matgen.train.cyclegan import train_cyclegan

    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        np.save(tmp / f"{name}.npy", rng.random((max(8, batch), 1, tile, tile)).astype(np.float16))
    marks: dict[int, float] = {}
    warmup = max(1, steps // 5)

    def clock(step: int, nets: dict) -> None:
        if step in (warmup, steps):
            if device.startswith("cuda"):
                import torch

                torch.cuda.synchronize()
            marks[step] = time.perf_counter()

    train_cyclegan(
        tmp / "a.npy",
        tmp / "b.npy",
        tmp / "c.pt",
        tmp / "c.csv",
        steps=steps,
        batch_size=batch,
        ngf=ngf,
        n_downsampling=depth,
        ndf=ngf,
        generator="unet",
        fourier=True,
        input_noise=0.1,
        checkpoint_every=10**9,
        log_every=10**9,
        show_progress=False,
        device=device,
        on_step=clock,
    )
    return (steps - warmup) * batch / (marks[steps] - marks[warmup])


def inference_rate(
    size: int, width: int, depth: int, tile: int, tta: bool, device: str, repeats: int = 2
) -> float:
    import torch

    from matgen.models.unet import UNet
    from matgen.pipeline.stem import vacancy_probability

    model = UNet(1, 1, width, depth, residual=True).to(device).eval()
    image = np.random.default_rng(0).random((size, size)).astype(np.float32)
    vacancy_probability(model, image[:tile, :tile], tile=tile, tta=False)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        vacancy_probability(model, image, tile=tile, overlap=tile // 4, tta=tta)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return repeats * size * size / 1e6 / (time.perf_counter() - start)


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--paper", action="store_true")
    args = parser.parse_args()
    rows = []
    for size, n in ((256, 20), (1024, 3)):
        for degrade in (False, True):
            rows.append(
                (
                    f"simulate {size}² ({'exp' if degrade else 'sim'})",
                    "images/s",
                    simulation_rate(size, n, degrade),
                )
            )
    configs = [(64, 16, 3, 4, 20)] + ([(256, 64, 6, 1, 50)] if args.paper else [])
    # on the CPU, as a workflow job runs (its rule's threads) and with both cores: the speed-up
    # decides whether a long trainer should book 2 threads
    thread_counts = (1, 2) if args.device == "cpu" else (None,)
    with tempfile.TemporaryDirectory() as tmp:
        for (tile, ngf, depth, batch, steps), threads in itertools.product(configs, thread_counts):
            with limited_threads(threads) if threads else contextlib.nullcontext():
                rate = cyclegan_rate(Path(tmp), tile, ngf, depth, batch, steps, args.device)
            where = f", {threads} thread{'s' if threads > 1 else ''}" if threads else ""
            where += ", bf16" if bfloat16_autocast(torch.device(args.device), True) else ""
            rows.append((f"CycleGAN train {tile}², ngf {ngf}, batch {batch}{where}", "images/s",
                         rate))  # fmt: skip
    for size, width, depth, tile in [(256, 16, 3, 128)] + (
        [(1024, 32, 4, 512)] if args.paper else []
    ):
        for tta in (False, True):
            rows.append(
                (
                    f"detector {size}² width {width} tile {tile} {'TTA x8' if tta else 'no TTA'}",
                    "Mpx/s",
                    inference_rate(size, width, depth, tile, tta, args.device),
                )
            )
    print(f"device: {args.device}")
    print(f"{'benchmark':<52} {'unit':>9} {'rate':>10}")
    for name, unit, rate in rows:
        print(f"{name:<52} {unit:>9} {rate:>10.2f}")


if __name__ == "__main__":
    main()
