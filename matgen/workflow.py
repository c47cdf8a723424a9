"""Glue between Snakemake's ``script:`` directive and matgen stage functions.

Every script in ``scripts/`` is one call to :func:`run_stage`: it sends the stage's progress
and warnings to the rule's log, turns bad input into one line (naming the file and the problem)
and a non-zero exit, and writes a provenance JSON beside the first output.
"""

from __future__ import annotations

import contextlib
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import MatgenError
from .provenance import cpu_seconds, write_provenance
from .util import limited_threads


def run_stage(snakemake: Any, stage: Callable[..., Any], **kwargs: Any) -> Any:
    """Call ``stage(**kwargs)`` inside a Snakemake job; see the module docstring."""
    log_path = Path(snakemake.log[0]) if len(snakemake.log) else None
    # a rule whose numbers depend on its thread count names it in its params and runs with at
    # least that many where Snakemake grants fewer (--cores 1: the same numbers, slower); more
    # where a profile asks for more (set-threads on a cluster)
    params = getattr(snakemake, "params", None)
    fixed = params.get("threads") if hasattr(params, "get") else None
    threads = max(int(fixed or 1), int(getattr(snakemake, "threads", 1) or 1))
    started, cpu_started = time.time(), cpu_seconds()
    log = open(log_path, "w") if log_path else contextlib.nullcontext(sys.stderr)
    with log as stream, contextlib.redirect_stderr(stream), contextlib.redirect_stdout(stream):
        try:
            with limited_threads(threads):
                result = stage(**kwargs)
        except MatgenError as exc:
            print(f"error: {exc}", file=stream)
            print(f"error: {exc}", file=sys.__stderr__)
            sys.exit(1)
        except Exception:
            traceback.print_exc(file=stream)
            raise
    params = dict(params.items()) if hasattr(params, "items") else {}
    first = Path(snakemake.output[0])
    write_provenance(
        first.parent / f"{first.name}.provenance.json",
        stage=snakemake.rule,
        params=params,
        started=started,
        seed=_find_seed(params),
        threads=threads,
        cpu_started=cpu_started,
    )
    return result


def _find_seed(params: Any) -> int | None:
    """The ``seed`` of a rule's parameters, wherever in its (nested) config slice it sits."""
    if isinstance(params, dict):
        if "seed" in params:
            return params["seed"]
        for value in params.values():
            seed = _find_seed(value)
            if seed is not None:
                return seed
    return None
