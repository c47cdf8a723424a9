"""General helpers used at every layer: seeding, device choice and progress bars."""

from __future__ import annotations

import contextlib
import os
import random
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:  # torch is imported where it is used: the CLI starts fast
    import torch

T = TypeVar("T")


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch (all devices) from one integer; return a NumPy Generator.

    Also asks torch for deterministic algorithms where they exist (warn-only, so a missing
    deterministic kernel on some GPU op does not abort a long run).
    """
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    _deterministic_algorithms()
    return np.random.default_rng(seed)


def _deterministic_algorithms() -> None:
    """``torch.use_deterministic_algorithms(True, warn_only=True)`` without its import of
    TorchInductor's config (~3 s in every stage's process, for a flag only ``torch.compile``
    reads; matgen does not compile). Where inductor is loaded already, or torch lacks the
    setter, the public call."""
    import torch

    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None or "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        setter(True, warn_only=True)


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


def bfloat16_autocast(device: "torch.device", amp: bool) -> bool:
    """Whether a model with ``amp`` on trains under bfloat16 autocast on ``device``: on CUDA,
    and on a CPU where bfloat16 pays (:func:`cpu_bfloat16_pays`). Elsewhere float32. The
    choice follows the hardware, so two machines can differ in it as they already differ in
    their kernels' rounding; one machine always makes the same one."""
    if not amp:
        return False
    if device.type == "cuda":
        return True
    return device.type == "cpu" and cpu_bfloat16_pays()


def cpu_bfloat16_pays() -> bool:
    """Whether this CPU trains the study's networks faster in bfloat16 than in float32: oneDNN
    runs bfloat16 natively and the CPU has AMX tiles (Intel since Sapphire Rapids) or is an AMD
    one with AVX512-BF16 (Zen 4 on: a training step 1.16-1.7x faster, docs/porous.md). An
    Intel CPU with AVX512-BF16 but no AMX (Cooper Lake, or a VM that hides AMX) multiplies and
    adds no more bfloat16 than float32 values a cycle, and there oneDNN's bfloat16 kernels ran
    every bfloat16 training of the study 1.19-1.45x slower than float32 (docs/porous.md,
    "bfloat16 on the CPU"). Emulated bfloat16 (no AVX512-BF16) would be slower still."""
    import torch

    try:  # oneDNN's and PyTorch's own tests of the CPU's instructions (private: absent is no)
        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        amx = bool(torch.cpu._is_amx_tile_supported())
        avx512_bf16 = bool(torch.cpu._is_avx512_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
    return _bfloat16_pays(native, amx, avx512_bf16, cpu_vendor())


def _bfloat16_pays(native: bool, amx: bool, avx512_bf16: bool, vendor: str) -> bool:
    return native and (amx or (avx512_bf16 and vendor == "AuthenticAMD"))


def cpu_vendor() -> str:
    """The CPU's vendor as the processor names itself (``GenuineIntel``, ``AuthenticAMD``;
    Linux's /proc/cpuinfo), or '' where that cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def progress(
    iterable: Iterable[T], desc: str, total: int | None = None, initial: int = 0
) -> Iterator[T]:
    """A tqdm progress bar on stderr; refreshes rarely when not attached to a terminal (logs)."""
    from tqdm.auto import tqdm

    interactive = sys.stderr.isatty()
    return iter(
        tqdm(
            iterable,
            desc=desc,
            total=total,
            initial=initial,
            dynamic_ncols=True,
            mininterval=0.5 if interactive else 10.0,
            file=sys.stderr,
        )
    )


@contextlib.contextmanager
def limited_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` threads in torch and in the BLAS / OpenMP pools NumPy and
    SciPy use; child processes inherit ``OMP_NUM_THREADS``.

    A rule's ``threads:`` is what Snakemake books on the machine; using more oversubscribes the
    cores, and a thread count that follows whatever else is running makes results depend on it
    (reductions split over threads add up in another order). torch is only touched when the
    stage has imported it already: a torch imported inside the block takes its intra-op thread
    count from ``OMP_NUM_THREADS``, and stages without torch do not pay its 2-3 s import.
    """
    from threadpoolctl import threadpool_limits

    threads = max(1, int(threads))
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch.set_num_threads(threads)
        with contextlib.suppress(RuntimeError):  # settable once per process, before parallel work
            torch.set_num_interop_threads(threads)
    previous = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        if previous is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = previous
