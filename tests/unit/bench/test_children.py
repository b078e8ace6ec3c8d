"""The harness's child roles (``waterdrop._bench.children``): the flatness child's figures and
the reading its bar uses."""

from __future__ import annotations

import pytest

from waterdrop._bench.processes import run_child
from waterdrop._bench.settings import TOPIC
from waterdrop.testing import MockCluster

pytestmark = pytest.mark.timeout(180)


def test_flat_child_measures_from_the_second_unit():
    with MockCluster(brokers=1) as cluster:
        cluster.create_topic(TOPIC, partitions=3)
        out = run_child("flat", [
            "--client", "waterdrop", "--bootstrap", cluster.bootstrap_servers,
            "--topic", TOPIC, "--unit", "20000", "--units", "3"], timeout=150)
    assert out["failed"] == 0
    samples = out["samples_mib"]
    assert len(samples) == 3 and len(out["thread_arenas_mib"]) == 3
    assert out["first_mib"] == pytest.approx(samples[0], abs=0.01)
    assert out["start_mib"] == pytest.approx(samples[1], abs=0.01)
    assert out["end_mib"] == pytest.approx(samples[2], abs=0.01)
    assert out["change_pct"] == pytest.approx(
        (out["end_mib"] - out["start_mib"]) / out["start_mib"] * 100)
    assert out["change_pct_from_1st"] == pytest.approx(
        (out["end_mib"] - out["first_mib"]) / out["first_mib"] * 100)
    for arenas, other, rss in zip(out["thread_arenas_mib"], out["other_rss_mib"], samples):
        assert arenas + other == pytest.approx(rss, abs=max(0.5, rss / 50))
