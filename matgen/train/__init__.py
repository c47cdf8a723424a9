"""Training only: one resumable step loop (:class:`~matgen.train.loop.TrainingRun`), the losses
as named functions (:mod:`~matgen.train.losses`) and one ``train_<family>`` entry per model
family. Applying a trained model lives in :mod:`matgen.inference`."""

from ..checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from ..util import seed_everything
from .loop import CSVLogger, TrainingRun

__all__ = [
    "load_checkpoint",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
    "CSVLogger",
    "TrainingRun",
    "seed_everything",
]
