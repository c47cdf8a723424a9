"""Labelled image sets for conditional models: images, class indices, a scalar target (E11) and
the condition vector a model sees (one-hot class + standardised target)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ..errors import InputError
from .ingest import load_stack


@dataclass(frozen=True)
class Conditioning:
    """How (class, target) becomes a model's condition vector; stored in every checkpoint."""

    classes: tuple[str, ...]
    target_mean: float
    target_std: float

    @property
    def dim(self) -> int:
        return len(self.classes) + 1

    def encode(self, class_index: np.ndarray, target: np.ndarray) -> np.ndarray:
        """(N, n_classes + 1) float32: one-hot class, then (target − mean) / std."""
        class_index = np.asarray(class_index, int)
        out = np.zeros((len(class_index), self.dim), np.float32)
        out[np.arange(len(class_index)), class_index] = 1
        out[:, -1] = (np.asarray(target, float) - self.target_mean) / self.target_std
        return out

    def class_index(self, names: list[str] | np.ndarray) -> np.ndarray:
        lookup = {c: i for i, c in enumerate(self.classes)}
        bad = [n for n in map(str, names) if n not in lookup]
        if bad:
            raise InputError(f"class {bad[0]!r} is not one of {list(self.classes)}")
        return np.array([lookup[str(n)] for n in names], int)

    def to_dict(self) -> dict:
        return {**asdict(self), "classes": list(self.classes)}

    @classmethod
    def from_dict(cls, d: dict) -> "Conditioning":
        return cls(tuple(d["classes"]), float(d["target_mean"]), float(d["target_std"]))


@dataclass
class LabelledImages:
    images: np.ndarray  # (N, C, H, W) float32 in [0, 1]
    class_index: np.ndarray  # (N,)
    target: np.ndarray  # (N,) e.g. E11 in GPa
    table: pd.DataFrame


def load_labelled(
    images_path: str | os.PathLike,
    table_path: str | os.PathLike,
    classes: list[str],
    target: str = "e11",
) -> LabelledImages:
    """Images and their ``class`` / ``target`` columns from an ingest stage's stack and table."""
    images = np.array(load_stack(images_path), np.float32)  # a writable copy
    table = pd.read_csv(table_path)
    for column in ("class", target):
        if column not in table:
            raise InputError(f"{table_path}: no {column!r} column")
    if len(table) != len(images):
        raise InputError(f"{table_path}: {len(table)} rows for {len(images)} images")
    values = pd.to_numeric(table[target], errors="coerce").to_numpy(float)
    if np.isnan(values).any():
        raise InputError(
            f"{table_path}: row {int(np.flatnonzero(np.isnan(values))[0]) + 2}: "
            f"{target} is missing or not a number"
        )
    lookup = {str(c): i for i, c in enumerate(classes)}
    names = table["class"].astype(str).to_numpy()
    bad = [i for i, n in enumerate(names) if n not in lookup]
    if bad:
        raise InputError(
            f"{table_path}: row {bad[0] + 2}: class {names[bad[0]]!r} is not one of {list(classes)}"
        )
    return LabelledImages(images, np.array([lookup[n] for n in names]), values, table)


def conditioning_for(data: LabelledImages, classes: list[str]) -> Conditioning:
    std = float(data.target.std()) or 1.0
    return Conditioning(tuple(map(str, classes)), float(data.target.mean()), std)


def held_out_split(
    n: int, fraction: float, seed: int, stratify: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test): ``fraction`` of each stratum held out, reproducibly from ``seed``."""
    rng = np.random.default_rng(seed)
    groups = np.zeros(n, int) if stratify is None else np.asarray(stratify)
    test = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        k = int(round(len(idx) * fraction))
        test.extend(rng.choice(idx, k, replace=False).tolist())
    test = np.sort(np.array(test, int))
    train = np.setdiff1d(np.arange(n), test)
    return train, test
