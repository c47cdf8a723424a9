"""Epoch-based training that survives being killed: one helper for the small models.

A :class:`ResumableRun` owns the resume checkpoint (``<model>.resume.pt``: modules, optimisers,
RNG states, epoch and the CSV log so far), restores it when a previous run was killed, and
writes the final model file atomically at the end.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ..errors import TrainingDiverged
from .checkpoint import load_resume_checkpoint, resume_path_for, save_checkpoint
from .loop import CSVLogger, restore_log


class ResumableRun:
    """Checkpoint/resume bookkeeping for ``modules`` and ``optimizers`` (dicts of name → object)."""

    def __init__(self, model_out: str | os.PathLike, log_out: str | os.PathLike,
                 model_config: dict[str, Any], modules: dict[str, Any],
                 optimizers: dict[str, Any], device: Any = "cpu",
                 resume_config: dict[str, Any] | None = None) -> None:
        # resume_config: what a resume checkpoint must match (model_config plus any training-only
        # architecture, e.g. a GAN's discriminator); defaults to model_config
        self.model_out, self.log_out = Path(model_out), Path(log_out)
        self.resume = resume_path_for(model_out)
        self.model_config, self.modules, self.optimizers = model_config, modules, optimizers
        self.resume_config = model_config if resume_config is None else resume_config
        self.start = 0
        state = load_resume_checkpoint(self.resume, self.resume_config, str(device))
        if state is not None:
            for name, module in modules.items():
                module.load_state_dict(state[name])
            for name, opt in optimizers.items():
                opt.load_state_dict(state[name])
            self.start = int(state["step"])
            restore_log(log_out, state.get("log_csv", ""))
            print(f"resuming from {self.resume} at epoch {self.start}", file=sys.stderr)
        self.log = CSVLogger(log_out, resume_step=self.start if state is not None else None)

    def check_finite(self, epoch: int, **losses: float) -> None:
        import math

        for name, value in losses.items():
            if not math.isfinite(value):
                where = (f"last good checkpoint {self.resume} (epoch {self.start})"
                         if self.resume.exists() else "no checkpoint written yet")
                raise TrainingDiverged(f"{self.model_out}: {name} is not finite in epoch "
                                       f"{epoch}; {where}")

    def end_epoch(self, epoch: int, **values: float) -> None:
        """Stop on a non-finite value, log the epoch's values and write the resume checkpoint."""
        self.check_finite(epoch, **values)
        self.log.log(step=epoch, **values)
        self.checkpoint(epoch)

    def checkpoint(self, epoch: int) -> None:
        save_checkpoint(self.resume, step=epoch, model_config=self.resume_config,
                        log_csv=self.log_out.read_text() if self.log_out.exists() else "",
                        **{k: m.state_dict() for k, m in self.modules.items()},
                        **{k: o.state_dict() for k, o in self.optimizers.items()})

    def finish(self, family: str, epochs: int, **payload: Any) -> None:
        save_checkpoint(self.model_out, step=epochs, model_config=self.model_config,
                        include_rng=False, family=family,
                        **{k: m.state_dict() for k, m in self.modules.items()}, **payload)
        self.resume.unlink(missing_ok=True)
