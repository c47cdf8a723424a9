"""Provenance record written beside every stage's outputs: what produced them, and how."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from .io import save_json

_PACKAGES = ("matgen", "numpy", "scipy", "scikit-image", "pandas", "torch", "snakemake")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(cwd: str | os.PathLike = ".") -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device_description() -> str:
    """The GPU the stage could have used, else the CPU. Only a stage that loaded torch can have
    used a GPU, so torch is not imported here (3 s in a stage that never needed it)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return f"cuda:{torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
    return f"cpu:{platform.processor() or platform.machine()} x{os.cpu_count()}"


def cpu_arithmetic() -> str | None:
    """What a stage with ``amp`` on trains in on this CPU (:func:`matgen.util.bfloat16_autocast`),
    with the CPU's vendor: None where the stage never loaded torch."""
    if sys.modules.get("torch") is None:
        return None
    from .util import cpu_bfloat16_pays, cpu_vendor

    kind = "bfloat16" if cpu_bfloat16_pays() else "float32"
    return f"{kind} ({cpu_vendor() or 'unknown vendor'})"


def write_provenance(
    path: str | os.PathLike,
    *,
    stage: str,
    params: dict[str, Any],
    started: float,
    seed: int | None = None,
    threads: int | None = None,
) -> None:
    """Write ``path`` (JSON): stage, its config slice, seed, threads, versions, git commit,
    wall time."""
    save_json(
        Path(path),
        {
            "stage": stage,
            "params": params,
            "seed": seed,
            "threads": threads,
            "packages": package_versions(),
            "python": platform.python_version(),
            "git_commit": git_commit(Path(__file__).parent),
            "wall_time_s": round(time.time() - started, 3),
            "device": device_description(),
            "cpu_amp_arithmetic": cpu_arithmetic(),
            "host": platform.node(),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )
