"""Polysilicon study training cost: seconds per epoch of the cGAN, the cVAE and the CNN judge at
the sizes a config asks for, and the full training time that projects to, so the study's
8-minute budget on 2 CPU cores (config/config.yaml) is checked by a number, not a guess.

Snakemake runs each job with one thread, the cGAN beside the cVAE and the judge, so the study's
wall time is about the longer of (cGAN) and (cVAE + judge) plus ~30 s of simulation, sampling and
evaluation. Content does not change the cost, so the images are random.

Run: ``python benchmarks/polysilicon.py [--config config/paper.yaml] [--device cuda]
[--threads 1] [--epochs 3]``. Prints a table; never a test.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def fake_dataset(out: Path, classes: list[str], per_class: list[int], size: int) -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(classes, per_class)
    np.save(out / "images.npy", rng.random((len(labels), 1, size, size)).astype(np.float32))
    pd.DataFrame({"class": labels, "e11": rng.normal(160.0, 3.0, len(labels))}).to_csv(
        out / "table.csv", index=False
    )


def seconds_per_epoch(
    train, outputs: tuple[str, ...], data: Path, out: Path, epochs: int, **kw
) -> float:
    """(time for ``epochs`` − time for 1) / (epochs − 1): set-up and the first epoch cancel.
    ``outputs``: the file names ``train`` writes after its two inputs."""
    times = []
    for n in (1, epochs):
        run = out / f"{train.__name__}_{n}"
        start = time.perf_counter()
        train(
            data / "images.npy",
            data / "table.csv",
            *(run / name for name in outputs),
            **{**kw, "epochs": n},
            show_progress=False,
        )
        times.append(time.perf_counter() - start)
    return (times[1] - times[0]) / (epochs - 1)


def main() -> None:
    import torch

    from matgen.config import load_yaml
    from matgen.train.conditional import train_cgan, train_evaluator, train_vae

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="1 = a Snakemake job's")
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed per model (≥ 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    poly = load_yaml(args.config)["polysilicon"]
    sim = poly["simulate"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fake_dataset(tmp, poly["classes"], sim["images_per_class"], sim["image_size"])
        n = sum(sim["images_per_class"])
        checkpoint = ("model.pt", "log.csv")
        for name, train, key, outputs in (
            ("cGAN", train_cgan, "gan", checkpoint),
            ("cVAE", train_vae, "vae", checkpoint),
            ("CNN judge", train_evaluator, "evaluator", checkpoint + ("held_out.csv",)),
        ):
            kw = {k: v for k, v in poly[key].items() if k != "epochs"}
            kw["device"] = args.device
            per_epoch = seconds_per_epoch(
                train, outputs, tmp, tmp, args.epochs, classes=poly["classes"], **kw
            )
            seen = n * (1 - kw.get("held_out_fraction", 0))
            rows.append(
                (
                    name,
                    kw["batch_size"],
                    per_epoch,
                    seen / per_epoch,
                    per_epoch * poly[key]["epochs"],
                )
            )
    print(
        f"{args.config}: {n} images of {sim['image_size']}², device {args.device}, "
        f"torch {torch.__version__}, threads {torch.get_num_threads()}"
    )
    print(f"{'model':<10} {'batch':>5} {'s/epoch':>8} {'img/s':>8} {'projected s':>12}")
    for name, batch, per_epoch, rate, total in rows:
        print(f"{name:<10} {batch:>5} {per_epoch:>8.2f} {rate:>8.0f} {total:>12.0f}")
    gan, rest = rows[0][4], rows[1][4] + rows[2][4]
    print(
        f"training critical path on 2 one-thread jobs: max(cGAN, cVAE + judge) = "
        f"{max(gan, rest):.0f} s (+ ~30 s for the other stages)"
    )


if __name__ == "__main__":
    main()
