"""Seeding, device choice, progress bars and CSV training logs."""

from __future__ import annotations

import csv
import os
import random
import sys
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

import numpy as np

T = TypeVar("T")


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch (all devices) from one integer; return a NumPy Generator.

    Also asks torch for deterministic algorithms where they exist (warn-only, so a missing
    deterministic kernel on some GPU op does not abort a long run).
    """
    import torch

    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return np.random.default_rng(seed)


def select_device(preference: str = "auto") -> "torch.device":
    """``'auto'`` picks CUDA, then Apple MPS, then CPU; otherwise the named device, checked."""
    import torch

    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(preference)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {preference!r} requested but CUDA is not available")
    return device


def progress(iterable: Iterable[T], desc: str, total: int | None = None,
             initial: int = 0) -> Iterator[T]:
    """A tqdm progress bar on stderr; refreshes rarely when not attached to a terminal (logs)."""
    from tqdm.auto import tqdm

    interactive = sys.stderr.isatty()
    return iter(tqdm(iterable, desc=desc, total=total, initial=initial, dynamic_ncols=True,
                     mininterval=0.5 if interactive else 10.0, file=sys.stderr))


class CSVLogger:
    """Append rows of training metrics to a CSV file, one row per logged step.

    Resuming at ``step`` drops rows logged after it (they belong to work the checkpoint does not
    hold), so a killed and resumed run yields the same log as an uninterrupted one.
    """

    def __init__(self, path: str | os.PathLike, resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fields: list[str] | None = None
        if resume_step is None or not self.path.exists():
            self.path.write_text("")
            return
        with self.path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        rows = [r for r in rows if int(r["step"]) <= resume_step]
        self.path.write_text("")
        for row in rows:
            self.log(**row)

    def log(self, **values: float | int | str) -> None:
        if "step" not in values:
            raise ValueError("a log row needs a 'step'")
        if self._fields is None:
            self._fields = list(values)
            with self.path.open("w", newline="") as f:
                csv.DictWriter(f, self._fields).writeheader()
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self._fields, extrasaction="ignore").writerow(values)


def restore_log(path: str | os.PathLike, saved: str) -> None:
    """Put back a CSV log saved inside a checkpoint when the file itself is gone (Snakemake
    deletes a failed job's outputs, the log among them); :class:`CSVLogger` then trims it."""
    path = Path(path)
    if saved and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(saved)


def ema_update(average: "torch.nn.Module", model: "torch.nn.Module", beta: float) -> None:
    """``average ← beta·average + (1−beta)·model`` for parameters; buffers are copied."""
    import torch

    with torch.no_grad():
        for a, m in zip(average.parameters(), model.parameters()):
            a.lerp_(m.detach(), 1.0 - beta)
        for a, m in zip(average.buffers(), model.buffers()):
            a.copy_(m)
