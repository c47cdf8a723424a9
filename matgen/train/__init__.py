"""Shared training-loop helpers: seeding, device, checkpoints with resume, progress, CSV logs."""

from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .loop import CSVLogger, progress, seed_everything, select_device

__all__ = ["load_checkpoint", "rng_state", "save_checkpoint", "set_rng_state", "CSVLogger",
           "progress", "seed_everything", "select_device"]
