"""Atomic checkpoints holding everything needed to resume bit-for-bit.

A checkpoint is a ``.pt`` dict: model config, model/optimizer/EMA state dicts, step, and the RNG
states of Python, NumPy and torch. It is written to a temporary file and renamed, so a job killed
mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np

from .io import atomic_path


def resume_path_for(model_out: str | os.PathLike) -> Path:
    """Where the periodic checkpoint of a training run that writes ``model_out`` lives."""
    model_out = Path(model_out)
    return model_out.with_name(model_out.stem + ".resume.pt")


def rng_state() -> dict[str, Any]:
    """Snapshot of the Python, NumPy and torch (CPU and CUDA) random generators."""
    import torch

    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore a snapshot taken by :func:`rng_state`."""
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    path: str | os.PathLike,
    *,
    step: int,
    model_config: dict[str, Any],
    include_rng: bool = True,
    **states: Any,
) -> None:
    """Write a checkpoint atomically. ``states`` are state dicts (model=..., optimizer=...)."""
    import torch

    payload = {"step": int(step), "model_config": dict(model_config), **states}
    if include_rng:
        payload["rng"] = rng_state()
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(payload, tmp)


def load_checkpoint(
    path: str | os.PathLike, map_location: str = "cpu", restore_rng: bool = True
) -> dict[str, Any] | None:
    """Load a checkpoint (and restore its RNG states); ``None`` when the file does not exist."""
    import torch

    path = Path(path)
    if not path.is_file():
        return None
    payload = torch.load(path, map_location=map_location, weights_only=False)
    if restore_rng and "rng" in payload:
        set_rng_state(payload["rng"])
    return payload


def load_resume_checkpoint(
    path: str | os.PathLike,
    model_config: dict[str, Any],
    map_location: str = "cpu",
    restore_rng: bool = True,
) -> dict[str, Any] | None:
    """A training run's resume checkpoint (``None`` when there is none), refused with a one-line
    error naming the differing keys when it was written for another architecture."""
    from .errors import InputError

    state = load_checkpoint(path, map_location, restore_rng)
    if state is not None and state.get("model_config") != model_config:
        raise InputError(
            f"{path}: checkpoint of a different architecture "
            f"({config_difference(state.get('model_config'), model_config)}); "
            f"delete it to train afresh"
        )
    return state


def read_model_checkpoint(
    path: str | os.PathLike, family: str, map_location: str = "cpu"
) -> dict[str, Any]:
    """A trained model file of ``family`` (stylegan2, cyclegan, ...); one-line errors otherwise."""
    import torch

    from .errors import InputError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:
        raise InputError(f"{path}: unreadable checkpoint ({str(exc).splitlines()[0]})") from None
    if not isinstance(payload, dict) or "model_config" not in payload:
        raise InputError(f"{path}: not a matgen checkpoint")
    if payload.get("family") != family:
        raise InputError(
            f"{path}: not a {family} model checkpoint (family {payload.get('family', 'unknown')!r})"
        )
    return payload


def config_difference(old: dict[str, Any] | None, new: dict[str, Any]) -> str:
    """``"key old vs new, ..."`` for the keys where two model configs differ."""
    if not isinstance(old, dict):
        return "no model config"
    diffs = [f"{k} {old.get(k)} vs {new[k]}" for k in new if old.get(k) != new[k]]
    return ", ".join(diffs) or "same keys"


def load_trained_weights(
    model: Any,
    state: dict[str, Any],
    path: str | os.PathLike,
    device: str = "cpu",
    what: str = "weights",
) -> Any:
    """``model`` with a checkpoint's ``state`` loaded, on ``device``, in eval mode without
    gradients; a one-line error naming ``path`` when the weights do not fit its architecture."""
    from .errors import InputError

    try:
        model.load_state_dict(state)
    except RuntimeError:
        raise InputError(f"{path}: {what} do not fit the architecture in its config") from None
    return model.to(device).eval().requires_grad_(False)
