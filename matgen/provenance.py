"""Provenance record written beside every stage's outputs: what produced them, and how."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .io import save_json

if TYPE_CHECKING:
    import pandas as pd

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


def cpu_seconds() -> float:
    """CPU seconds (user + system) this process has used, all its threads, plus those of its
    children that have ended (a torchrun launcher's workers, say)."""
    try:
        import resource
    except ImportError:  # not on Windows: this process alone
        return time.process_time()
    own, children = (
        resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def write_provenance(
    path: str | os.PathLike,
    *,
    stage: str,
    params: dict[str, Any],
    started: float,
    seed: int | None = None,
    threads: int | None = None,
    cpu_started: float | None = None,
) -> None:
    """Write ``path`` (JSON): stage, its config slice, seed, threads, versions, git commit,
    wall time and, given ``cpu_started`` (:func:`cpu_seconds` when the stage began), the CPU
    seconds it used. Snakemake's benchmark files sample a job's CPU time every 30 s after its
    first 15, so they miss up to 30 s of every job (a 40-s U-Net job read 15); this does not."""
    cpu = None if cpu_started is None else round(cpu_seconds() - cpu_started, 3)
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
            "cpu_time_s": cpu,
            "device": device_description(),
            "cpu_amp_arithmetic": cpu_arithmetic(),
            "host": platform.node(),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )


def job_times(results: str | os.PathLike) -> "pd.DataFrame":
    """One row per finished stage under ``results`` whose provenance records its CPU seconds:
    run (the directory holding its ``logs/``, relative to ``results``: ``.`` for ``make
    study``, ``seeds/seed<k>`` for ``make seeds``), study (the run's first sub-directory on its
    path), stage (the rule), job (its first output's directory within the study), threads,
    wall and CPU seconds."""
    import json

    import pandas as pd

    root = Path(results)
    rows = []
    for path in sorted(root.rglob("*.provenance.json")):
        record = json.loads(path.read_text())
        if record.get("cpu_time_s") is None:
            continue  # written before CPU seconds were recorded
        run = next((p for p in path.parents if (p / "logs").is_dir()), None)
        if run is None or not run.is_relative_to(root):
            continue
        parts = path.relative_to(run).parts[:-1]
        if not parts:
            continue  # not a study's output
        study, *where = parts
        rows.append({"run": str(run.relative_to(root)), "study": study, "stage": record["stage"],
                     "job": "/".join(where) or ".", "threads": record.get("threads") or 1,
                     "wall_s": record["wall_time_s"], "cpu_s": record["cpu_time_s"]})  # fmt: skip
    columns = ["run", "study", "stage", "job", "threads", "wall_s", "cpu_s"]
    return pd.DataFrame(rows, columns=columns)
