"""One resumable training loop for every trainer, and its CSV log.

A :class:`TrainingRun` counts steps — an optimiser step for the GANs, an epoch for the small
epoch-based models — and owns everything around the step itself: the progress bar, means of the
logged values over ``log_every`` steps, the divergence check, the resume checkpoint
(``<model>.resume.pt``: every module and stateful object, extra state such as data RNGs, the
RNG states, the CSV log so far) written atomically every ``checkpoint_every`` steps, and the
final model file. A killed run started again continues from the last checkpoint; on one process
the resumed run is bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import csv
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..checkpoint import load_resume_checkpoint, resume_path_for, save_checkpoint
from ..errors import TrainingDiverged
from ..util import progress

if TYPE_CHECKING:  # torch is imported where it is used: the CLI starts fast
    import torch


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


def recalibrate_batch_norm(
    module: "torch.nn.Module", forward: Callable[[], Any], batches: int
) -> None:
    """Precise batch-norm statistics: reset the running mean and variance of every BatchNorm
    layer in ``module`` and re-estimate them as the plain average over ``batches`` calls of
    ``forward`` (which must run ``module``) at the final weights, in training mode, without
    gradients. The running statistics left by training are an exponential average over batches
    drawn while the weights still moved; a generator trained in training mode then draws other
    images in evaluation mode (a cGAN's grain counts per class moved by up to 30 %)."""
    import torch

    norms = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if batches <= 0 or not norms:
        return
    momenta, was_training = [m.momentum for m in norms], module.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    module.train()
    with torch.no_grad():
        for _ in range(batches):
            forward()
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    module.train(was_training)


def ema_update(average: "torch.nn.Module", model: "torch.nn.Module", beta: float) -> None:
    """``average ← beta·average + (1−beta)·model`` for parameters; buffers are copied."""
    import torch

    with torch.no_grad():
        for a, m in zip(average.parameters(), model.parameters()):
            a.lerp_(m.detach(), 1.0 - beta)
        for a, m in zip(average.buffers(), model.buffers()):
            a.copy_(m)


class TrainingRun:
    """The step loop's bookkeeping for ``modules`` (saved in the model file) and ``states``
    (optimisers, ADA, image pools: anything with ``state_dict`` / ``load_state_dict``, saved
    for resuming only).

    ``resume_config`` is what a resume checkpoint must match (the model config plus training-only
    architecture such as a GAN's discriminator; default ``model_config``). ``extra_state()``
    returns plain values to carry in the resume checkpoint (data RNG states, running means); the
    trainer reads them back from :attr:`resumed`, the loaded checkpoint (``None`` on a fresh
    start). Under data parallelism only the main process logs and writes files; ``restore_rng``
    restores the global RNG states from the checkpoint and ``sync`` runs after every checkpoint.
    """

    def __init__(
        self,
        model_out: str | os.PathLike,
        log_out: str | os.PathLike,
        *,
        total: int,
        model_config: dict[str, Any],
        modules: dict[str, Any],
        states: dict[str, Any],
        device: Any = "cpu",
        resume_config: dict[str, Any] | None = None,
        unit: str = "step",
        log_every: int = 1,
        checkpoint_every: int = 1,
        desc: str = "training",
        show_progress: bool = True,
        is_main: bool = True,
        restore_rng: bool = True,
        extra_state: Callable[[], dict[str, Any]] | None = None,
        sync: Callable[[], None] | None = None,
    ) -> None:
        self.model_out, self.log_out = Path(model_out), Path(log_out)
        self.resume = resume_path_for(model_out)
        self.total, self.unit, self.desc = int(total), unit, desc
        self.model_config, self.modules, self.states = model_config, modules, states
        self.resume_config = model_config if resume_config is None else resume_config
        self.log_every, self.checkpoint_every = max(1, log_every), max(1, checkpoint_every)
        self.show_progress, self.is_main = show_progress, is_main
        self.extra_state, self.sync = extra_state, sync or (lambda: None)
        self.resumed = load_resume_checkpoint(
            self.resume, self.resume_config, str(device), restore_rng=restore_rng
        )
        self.start = 0
        if self.resumed is not None:
            for name, obj in {**modules, **states}.items():
                obj.load_state_dict(self.resumed[name])
            self.start = int(self.resumed["step"])
            if is_main:
                restore_log(log_out, self.resumed.get("log_csv", ""))
                print(
                    f"resuming from {self.resume} at {unit} {self.start} of {self.total}",
                    file=sys.stderr,
                )
        self.log = (
            CSVLogger(log_out, self.start if self.resumed is not None else None)
            if is_main
            else None
        )
        # running sums of the current log interval travel in the checkpoint, so a resumed run
        # logs the same means as an uninterrupted one
        self.sums: dict[str, Any] = dict(self.resumed.get("log_sums", {})) if self.resumed else {}
        self.last_good = self.start if self.resumed is not None else None
        self.started = time.time()

    @classmethod
    def with_adam(
        cls,
        model_out: str | os.PathLike,
        log_out: str | os.PathLike,
        model: "torch.nn.Module",
        model_config: dict[str, Any],
        *,
        lr: float,
        epochs: int,
        device: Any,
        desc: str,
        show_progress: bool = True,
    ) -> tuple["torch.optim.Adam", TrainingRun]:
        """The common case: one module (``model``) trained by Adam, counted in epochs; returns
        the optimiser and the run (restored from its resume checkpoint where there is one)."""
        import torch

        opt = torch.optim.Adam(model.parameters(), lr=lr)
        run = cls(
            model_out,
            log_out,
            total=epochs,
            model_config=model_config,
            modules={"model": model},
            states={"optimizer": opt},
            device=device,
            unit="epoch",
            desc=desc,
            show_progress=show_progress,
        )
        return opt, run

    def steps(self) -> Iterator[int]:
        """The step indices still to run, with a progress bar on the main process."""
        steps: Iterable[int] = range(self.start, self.total)
        if self.is_main and self.show_progress:
            steps = progress(steps, self.desc, self.total, self.start)
        return iter(steps)

    def end_step(
        self,
        done: int,
        values: dict[str, Any],
        row: Callable[[dict[str, float]], dict[str, Any]] | None = None,
        watch: Iterable["torch.nn.Module"] = (),
    ) -> None:
        """After ``done`` steps: add ``values`` (floats or 0-d tensors) to the interval's sums;
        at a log, checkpoint or the last step stop on a non-finite value (or a non-finite weight
        of a ``watch`` module); every ``log_every`` steps log the means (``row(means)`` chooses
        and orders the columns after ``step``); every ``checkpoint_every`` steps checkpoint."""
        values = {k: v.detach() if hasattr(v, "detach") else v for k, v in values.items()}
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        logs = done % self.log_every == 0
        checkpoints = done % self.checkpoint_every == 0 and done < self.total
        if logs or checkpoints or done == self.total:
            self._check_finite(done, values, watch)
        if logs:
            means = {k: float(v) / self.log_every for k, v in self.sums.items()}
            if self.log is not None:
                self.log.log(step=done, **(row(means) if row is not None else means))
            self.sums = {}
        if checkpoints:
            self.checkpoint(done)

    def _check_finite(
        self, done: int, values: dict[str, Any], watch: Iterable["torch.nn.Module"]
    ) -> None:
        import torch

        bad = [k for k, v in values.items() if not math.isfinite(float(v))]
        if not bad and not all(torch.isfinite(p).all() for m in watch for p in m.parameters()):
            bad = ["a weight"]
        if bad:
            where = (
                f"last good checkpoint {self.resume} ({self.unit} {self.last_good})"
                if self.last_good is not None
                else "no checkpoint written yet"
            )
            raise TrainingDiverged(
                f"{self.model_out}: {bad[0]} is not finite at {self.unit} "
                f"{done} of {self.total}; {where}"
            )

    def checkpoint(self, done: int) -> None:
        """Write the resume checkpoint after ``done`` steps (main process), then ``sync``."""
        if self.is_main:
            log = self.log_out.read_text() if self.log_out.exists() else ""
            save_checkpoint(
                self.resume,
                step=done,
                model_config=self.resume_config,
                log_csv=log,
                log_sums={k: float(v) for k, v in self.sums.items()},
                **(self.extra_state() if self.extra_state else {}),
                **{k: o.state_dict() for k, o in {**self.modules, **self.states}.items()},
            )
        self.last_good = done
        self.sync()

    def finish(self, family: str, **payload: Any) -> None:
        """Write the model file (modules, ``payload``, model config, family) and drop the
        resume checkpoint."""
        if self.is_main:
            save_checkpoint(
                self.model_out,
                step=self.total,
                model_config=self.model_config,
                include_rng=False,
                family=family,
                **{k: m.state_dict() for k, m in self.modules.items()},
                **payload,
            )
            self.resume.unlink(missing_ok=True)
        self.sync()
