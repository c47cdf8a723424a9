import numpy as np
import pytest


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
