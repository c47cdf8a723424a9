import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The workflow and SLURM tests first: `make test` hands whole files to its workers in this
    order, and these files take minutes each, so started last they would finish long after the
    rest."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is None
               and item.get_closest_marker("hpc") is None)  # fmt: skip
