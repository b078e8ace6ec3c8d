"""Property suites: one mock cluster for the session, sizes from WATERDROP_SOAK.

``EXAMPLES`` is at least 2,000 per property in CI (derandomized: the same examples every
run, so CI is reproducible) and 100,000 in soak mode (random: new examples every run).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from tests.reliability.sizes import SOAK, sized
from waterdrop.testing import MockCluster

EXAMPLES = sized(2_000, 100_000)

PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not SOAK,
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)


@pytest.fixture(scope="session")
def mock_cluster():
    with MockCluster(brokers=1) as cluster:
        yield cluster
