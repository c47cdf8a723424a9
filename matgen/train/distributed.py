"""Data-parallel training across processes started by ``torchrun`` (one process per GPU).

Each process computes gradients on its own share of the batch with its own random stream; the
gradients are averaged with one all-reduce of a flattened buffer per optimiser step (what DDP
does, done by hand because GAN steps run G and D several times per step with lazy
regularisation, which DDP's hooks handle badly). Only rank 0 writes files.

:func:`launch` is how a Snakemake rule starts K processes: it re-runs a matgen function under
``python -m torch.distributed.run --standalone --nproc_per_node K`` (the ``torchrun`` command),
or calls it in-process when K ≤ 1. CPU runs use the gloo backend, GPUs NCCL.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import MatgenError

if TYPE_CHECKING:  # torch is imported where it is used: the CLI starts fast
    import torch


@dataclass(frozen=True)
class Distributed:
    """Where this process sits: ``rank`` of ``world_size``, GPU index ``local_rank``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_preference: str = "auto") -> tuple[Distributed, "torch.device"]:
    """Join the process group set up by torchrun (if any) and pick this process's device."""
    import torch
    import torch.distributed as dist

    from ..util import select_device

    world = int(os.environ.get("WORLD_SIZE", "1"))
    info = Distributed(
        int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))
    )
    device = select_device(device_preference)
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if info.enabled and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return info, device


def all_reduce_gradients(parameters: Iterable["torch.nn.Parameter"], info: Distributed) -> None:
    """Average the gradients of ``parameters`` over all processes (missing grads count as 0)."""
    import torch
    import torch.distributed as dist

    if not info.enabled:
        return
    params = [p for p in parameters if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= info.world_size
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


def all_reduce_sum(values: list[float], info: Distributed, device: "torch.device") -> list[float]:
    """Sum a few scalars over processes (e.g. the ADA sign statistics)."""
    import torch
    import torch.distributed as dist

    if not info.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def barrier(info: Distributed) -> None:
    import torch.distributed as dist

    if info.enabled:
        dist.barrier()


def shutdown(info: Distributed) -> None:
    import torch.distributed as dist

    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def launch(target: str, kwargs: dict[str, Any], nproc: int = 1) -> Any:
    """Run ``module:function(**kwargs)`` in ``nproc`` data-parallel processes (torchrun).

    ``kwargs`` must be JSON-serialisable. With ``nproc <= 1`` the function is called directly
    and its result returned; otherwise the call blocks until all processes finish and raises
    :class:`MatgenError` if any failed (their output goes to this process's stdout/stderr).
    """
    if nproc <= 1:
        return _resolve(target)(**kwargs)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"target": target, "kwargs": kwargs}, f)
        spec = f.name
    try:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            "-m",
            "matgen.train.distributed",
            spec,
        ]
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        done = subprocess.run(cmd, env=env, stdout=_fd(sys.stdout), stderr=_fd(sys.stderr))
    finally:
        os.unlink(spec)
    if done.returncode:
        raise MatgenError(
            f"{target}: {nproc} data-parallel processes failed "
            f"(exit {done.returncode}); see the log above"
        )
    return None


def _fd(stream: Any) -> Any:
    """The stream if it is backed by a file descriptor (a rule's log), else inherit ours."""
    try:
        stream.fileno()
        stream.flush()
        return stream
    except (AttributeError, OSError, ValueError):
        return None


def _resolve(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _worker(spec_path: str) -> int:
    with open(spec_path) as f:
        spec = json.load(f)
    try:
        _resolve(spec["target"])(**spec["kwargs"])
    except MatgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1]))
