"""The one percentile (``waterdrop._bench.stats``) that ``waterdrop bench`` and the comparison
harness both use, and the medians of rounds."""

from __future__ import annotations

import math

import pytest

from waterdrop._bench.stats import percentile, pool_rates, rate_summary


def test_percentile_of_nothing_is_none():
    # no acknowledged message, no latency: waterdrop bench shows "-" and JSON null
    for fraction in (0.0, 0.5, 0.99, 1.0):
        assert percentile([], fraction) is None


@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.95, 0.99, 1.0])
def test_percentile_of_one_value_is_that_value(fraction):
    assert percentile([4.25], fraction) == 4.25


def test_percentile_is_the_nearest_rank():
    values = [float(x) for x in range(101)]  # 0.0 .. 100.0: index i holds i
    assert percentile(values, 0.0) == 0.0
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    # between ranks: round(fraction * (len - 1)), never past the last value
    four = [1.0, 2.0, 3.0, 4.0]
    assert percentile(four, 0.50) == 3.0   # round(1.5) -> 2 (banker's rounding)
    assert percentile(four, 0.40) == 2.0   # round(1.2) -> 1
    assert percentile(four, 0.99) == 4.0   # round(2.97) -> 3
    assert percentile([1.0, 2.0], 0.5) == 1.0  # round(0.5) -> 0


def test_rate_summary_is_the_median_of_rounds():
    out = rate_summary([(2.0, 1.0), (1.0, 0.5), (4.0, 3.0)], 1000)
    assert out["msgs_per_s"] == 500.0
    assert out["rounds_msgs_per_s"] == [500, 1000, 250]
    assert out["rounds_seconds"] == [2.0, 1.0, 4.0]
    assert out["cpu_us_per_msg"] == 1000.0
    assert out["rounds_cpu_us_per_msg"] == [1000.0, 500.0, 3000.0]


def test_pool_rates_takes_the_median_over_every_run():
    one = rate_summary([(1.0, 1.0)], 100)
    two = rate_summary([(2.0, 1.0), (4.0, 1.0)], 100)
    pooled = pool_rates([one, two])
    assert pooled["rounds_msgs_per_s"] == [100, 50, 25]
    assert pooled["msgs_per_s"] == 50
    assert math.isclose(pooled["cpu_us_per_msg"], 10_000.0)
    # reports without CPU figures pool without them
    assert "cpu_us_per_msg" not in pool_rates([{"rounds_msgs_per_s": [1, 2]}])
