import os

import numpy as np
import pytest

# `make test` runs one pytest-xdist worker per core, and torch gives each worker one thread per
# core: 4 threads on 2 cores, whose OpenMP barriers then wait on threads that the other worker
# holds off the cores (the suite on 2 cores, alone: 16 min 39 s at 2 threads a worker, 6 min 4 s
# at 1; a 40-step CycleGAN test 3.6 s alone, 212 s in the suite). Each worker
# gets its share of the cores; set here, before any test module imports torch.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    # the cores this process may run on (a pinned job or container can hold fewer than the host)
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    _share = (_cores or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, _share)))


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(autouse=True)
def _seeded_global_generators() -> None:
    """Each test starts from the same global torch and NumPy random state: `make test` hands
    whole files to its workers, so without this a test that draws from the global generators
    sees whatever the tests before it in its worker left behind."""
    import torch

    torch.manual_seed(0)
    np.random.seed(0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The workflow and SLURM tests first: `make test` hands whole files to its workers in this
    order, and these files take minutes each, so started last they would finish long after the
    rest."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is None
               and item.get_closest_marker("hpc") is None)  # fmt: skip
