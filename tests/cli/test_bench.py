"""``waterdrop bench``: every mode, --json for machines, --rate, -X, and --compare's guards."""

from __future__ import annotations

import sys
import time

import pytest

from tests.cli.conftest import invoke, last_json, run
from tests.helpers import message_count

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(("mode", "extra"), [
    ("sync", []), ("async", []), ("many", ["--batch", "40"]),
])
def test_every_mode_delivers_every_message(mode, extra):
    result = invoke(["bench", "--mode", mode, "--messages", "120", "--size", "64",
                     "-X", "linger.ms=1", "--json", "--no-progress", *extra])
    assert result.exit_code == 0, result.stderr
    report = last_json(result.stdout)
    assert report["mode"] == mode
    assert report["messages"] == 120 and report["delivered"] == 120
    assert report["failed"] == 0 and report["errors"] == {}
    assert report["size"] == 64
    assert report["cluster"] == "mock"
    assert report["batch"] == (40 if mode == "many" else None)
    for name in ("p50", "p95", "p99", "max"):
        assert report[f"latency_{name}_ms"] > 0
    assert (report["latency_p50_ms"] <= report["latency_p95_ms"] <= report["latency_p99_ms"]
            <= report["latency_max_ms"])
    assert report["messages_per_second"] > 0 and report["mb_per_second"] >= 0
    # the human table went to stderr, stdout holds only the JSON line
    assert len(result.stdout.strip().splitlines()) == 1
    assert "throughput" in result.stderr


def test_human_table_without_json():
    result = invoke(["bench", "--messages", "50", "--mode", "async"])
    assert result.exit_code == 0, result.stderr
    for text in ("delivered", "50", "throughput", "msg/s", "MB/s", "latency p99", "failed"):
        assert text in result.stdout


@pytest.mark.parametrize("how", ["python -m waterdrop", "waterdrop script"])
def test_bench_in_a_subprocess(how):
    proc = run(how, ["bench", "-n", "200", "--json"])
    assert proc.returncode == 0, proc.stderr
    report = last_json(proc.stdout)
    assert report["delivered"] == report["messages"] == 200
    # not a terminal: no progress bar drawn
    assert "\r" not in proc.stderr


def test_bench_on_a_given_cluster_really_writes(cluster, topic):
    result = invoke(["bench", "-b", cluster.bootstrap_servers, "-t", topic, "-n", "300",
                     "--mode", "many", "--batch", "100", "--json"])
    assert result.exit_code == 0, result.stderr
    report = last_json(result.stdout)
    assert report["delivered"] == 300
    assert report["cluster"] == cluster.bootstrap_servers
    assert message_count(cluster.bootstrap_servers, topic) == 300 + 1  # and the warm-up


@pytest.mark.parametrize(("mode", "messages", "rate"), [
    ("async", 30, 100.0), ("many", 40, 200.0), ("sync", 10, 50.0),
])
def test_rate_limits_the_pace(mode, messages, rate):
    started = time.perf_counter()
    result = invoke(["bench", "--mode", mode, "-n", str(messages), "--rate", str(rate),
                     "-X", "linger.ms=0", "--json"])
    wall = time.perf_counter() - started
    assert result.exit_code == 0, result.stderr
    report = last_json(result.stdout)
    assert report["delivered"] == messages and report["rate_limit"] == rate
    # a lower bound only: the i-th message (from 0) is not sent before i / rate seconds
    floor = (messages - 1) / rate - 0.005
    assert report["seconds"] >= floor
    assert wall >= floor


def test_bad_setting_is_a_usage_error():
    result = invoke(["bench", "-n", "10", "-X", "batch.num.messages=many"])
    assert result.exit_code == 2
    assert "batch.num.messages=many" in result.stderr and "Traceback" not in result.stderr


def test_compare_options_need_compare():
    result = invoke(["bench", "-n", "10", "--quick"])
    assert result.exit_code == 2
    assert "--quick" in result.stderr and "--compare" in result.stderr


def test_compare_refuses_what_it_fixes():
    result = invoke(["bench", "--compare", "--size", "10", "--mode", "sync"])
    assert result.exit_code == 2
    assert "--size" in result.stderr and "--mode" in result.stderr


def test_compare_without_confluent_kafka_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "confluent_kafka", None)  # import now raises ImportError
    result = invoke(["bench", "--compare", "--quick"])
    assert result.exit_code == 1
    assert "--compare needs confluent-kafka" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(300)
def test_compare_quick_runs_side_by_side():
    proc = run("python -m waterdrop", [
        "bench", "--compare", "--quick", "--scenarios", "async", "--rounds", "1",
        "--messages", "2000", "--json"], timeout=240)
    assert proc.returncode == 0, proc.stderr
    report = last_json(proc.stdout)
    assert report["meta"]["command"].startswith("waterdrop bench --compare")
    assert "waterdrop" in proc.stderr and "confluent" in proc.stderr


def test_failed_messages_are_counted_and_fail_the_run():
    # librdkafka refuses messages above message.max.bytes (the warm-up message is small)
    result = invoke(["bench", "-n", "20", "--size", "2000", "-X", "message.max.bytes=1000",
                     "--json"])
    assert result.exit_code == 1
    report = last_json(result.stdout)
    assert (report["delivered"], report["failed"]) == (0, 20)
    assert sum(report["errors"].values()) == 20
    assert all("msg_size_too_large" in reason for reason in report["errors"])
    assert "msg_size_too_large" in result.stderr


def test_compare_options_show_the_harness_defaults():
    # the options are declared without importing the harness (it loads only when bench
    # runs), so their defaults and help are checked against it here
    from waterdrop._bench.settings import DEFAULTS, QUICK, SCENARIOS
    from waterdrop.cli import bench

    params = {param.name: param for param in bench.params}
    assert params["scenarios"].default == ",".join(SCENARIOS)
    assert f"default {DEFAULTS['rounds']}, --quick {QUICK['rounds']}" in params["rounds"].help
    assert f"with --compare: per round, {DEFAULTS['messages']:,}" in params["messages"].help
    assert params["batch"].default == DEFAULTS["batch"]


@pytest.mark.parametrize(("mode", "settings", "linger"), [
    ("sync", [], 0),                            # one at a time: no linger to wait out
    ("async", [], 5),
    ("many", [], 5),
    ("sync", ["-X", "linger.ms=7"], 7),         # the user's setting wins
])
def test_sync_mode_does_not_linger_unless_told_to(mode, settings, linger):
    result = invoke(["bench", "--mode", mode, "-n", "30", "--json", *settings])
    assert result.exit_code == 0, result.stderr
    assert last_json(result.stdout)["linger_ms"] == linger
    assert f"linger.ms {linger}" in result.stderr


def test_counts_have_thousands_separators():
    result = invoke(["bench", "--mode", "many", "-n", "1500", "--size", "1200"])
    assert result.exit_code == 0, result.stderr
    assert "1,500 x 1,200 B" in result.stdout
    delivered = next(line for line in result.stdout.splitlines() if "delivered" in line)
    assert "1,500" in delivered


def test_a_size_above_max_payload_size_names_the_option():
    result = invoke(["bench", "-n", "5", "--size", "2000", "--max-payload-size", "1000"])
    assert result.exit_code == 2
    assert "2,000 bytes is above max_payload_size 1,000" in result.stderr
    assert "--max-payload-size" in result.stderr


def test_max_payload_size_lets_larger_payloads_through():
    # above librdkafka's default message.max.bytes (1,000,000) too: the option raises it
    result = invoke(["bench", "-n", "3", "--mode", "sync", "--size", "1500000",
                     "--max-payload-size", "2000000", "--json"])
    assert result.exit_code == 0, result.stderr
    report = last_json(result.stdout)
    assert (report["delivered"], report["max_payload_size"]) == (3, 2_000_000)


def test_a_topic_above_kafkas_limit_is_a_usage_error():
    result = invoke(["bench", "-n", "5", "-t", "t" * 250])
    assert result.exit_code == 2
    assert "is 250 characters long, above Kafka's limit of 249" in result.stderr
