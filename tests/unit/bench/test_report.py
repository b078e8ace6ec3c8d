"""The comparison's report for a reader (``waterdrop._bench.report``): several runs pooled
into one, and the table rows with their ratios, bars and verdicts."""

from __future__ import annotations

import pytest

from waterdrop._bench.report import combine_reports, format_report, table_rows
from waterdrop._bench.stats import rate_summary


def _run(wd_seconds: float, ck_seconds: float, p50: float) -> dict:
    n = 1000
    wd, ck = rate_summary([(wd_seconds, 0.001)], n), rate_summary([(ck_seconds, 0.002)], n)
    return {
        "meta": {"python": "3", "cpus": 2, "payload_bytes": 100},
        "options": {"rounds": 1, "messages": n, "scenarios": ["async", "sync"]},
        "targets": {"mock": {
            "label": "MockCluster", "bootstrap": "mock:1",
            "async": {"waterdrop": wd, "confluent": ck, "messages": n, "bar": 2.0,
                      "ratio": wd["msgs_per_s"] / ck["msgs_per_s"],
                      "cpu_ratio": ck["cpu_us_per_msg"] / wd["cpu_us_per_msg"],
                      "pass": wd["msgs_per_s"] / ck["msgs_per_s"] >= 2.0},
            "sync": {"messages": 10, "bar": 1.0,
                     "waterdrop": {"p50_ms": p50, "p99_ms": 2 * p50,
                                   "rounds_p50_ms": [p50], "rounds_p99_ms": [2 * p50]},
                     "confluent": {"p50_ms": 1.0, "p99_ms": 2.0,
                                   "rounds_p50_ms": [1.0], "rounds_p99_ms": [2.0]},
                     "ratio_p50": p50, "ratio_p99": p50, "pass": p50 <= 1.0},
        }},
    }


def test_rows_give_ratio_bar_and_verdict():
    rows = table_rows(_run(0.5, 1.5, 0.5)["targets"]["mock"])
    assert rows[0] == ("produce_async, all waited", "2,000 msg/s", "confluent 667 msg/s",
                       "3.00x", ">= 2.0x", "PASS")
    assert rows[1][0] == "  CPU per message (speed-up)" and rows[1][3] == "2.00x"
    assert rows[2] == ("produce_sync p50, linger 0", "0.500 ms", "confluent 1.000 ms",
                       "0.50x", "<= 1.0x", "PASS")
    assert rows[3][0] == "produce_sync p99, linger 0" and rows[3][5] == "PASS"


def test_a_failed_scenario_is_one_error_row():
    results = {"label": "x", "bootstrap": "x",
               "sync": {"error": "RuntimeError: " + "y" * 60, "wall_seconds": 1.0}}
    assert table_rows(results) == [
        ("produce_sync", "error", ("RuntimeError: " + "y" * 60)[:40], "", "<= 1.0x", "FAIL")]


def test_runs_pool_into_medians_over_every_round():
    runs = [_run(0.5, 1.5, 0.5), _run(1.0, 1.0, 1.5), _run(0.25, 1.0, 0.8)]
    combined = combine_reports(runs)
    assert combined["runs"] == 3 and combined["options"]["rounds"] == 3
    target = combined["targets"]["mock"]
    assert target["label"] == "MockCluster, 3 runs pooled"
    assert target["async"]["waterdrop"]["rounds_msgs_per_s"] == [2000, 1000, 4000]
    assert target["async"]["waterdrop"]["msgs_per_s"] == 2000
    assert target["async"]["ratio_per_run"] == pytest.approx([3.0, 1.0, 4.0])
    assert target["sync"]["waterdrop"]["p50_ms"] == 0.8
    assert target["sync"]["ratio_p50"] == pytest.approx(0.8) and target["sync"]["pass"]
    assert "pooled" in format_report(combined)
    # one report is itself
    assert combine_reports(runs[:1]) is runs[0]
