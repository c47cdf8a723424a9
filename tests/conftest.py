import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def _shared_fixture(item: pytest.Item) -> str | None:
    """The first of our module- or session-scoped fixtures ``item`` uses, as 'scope:where:name'."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    for name in sorted(info.name2fixturedefs):
        definition = info.name2fixturedefs[name][-1]
        # baseid "" = pytest's own fixtures (tmp_path_factory is session-scoped but cheap)
        if definition.scope in ("module", "session") and definition.baseid:
            return f"{definition.scope}:{definition.baseid}:{name}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`make test` runs the suite on every core (pytest-xdist, --dist loadgroup): the tests that
    share an expensive fixture (the tiny workflow run, the SLURM cluster, a trained model) go to
    one worker together, so each such fixture is built once; the rest spread over the workers."""
    for item in items:
        group = _shared_fixture(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
