"""``waterdrop produce``: lines and JSON from stdin and files, read back with confluent-kafka.

Every run that is read back produces to a MockCluster of the test's own (``--bootstrap-servers``),
which outlives the command; the embedded cluster is checked through the command's summary.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import signal
import subprocess
import sys

import pytest

from tests.cli.conftest import closed_port, invoke, last_json, run
from tests.helpers import consume, headers_of

pytestmark = pytest.mark.timeout(60)


def by_value(messages):
    return {m.value(): m for m in messages}


def test_lines_from_stdin_with_key_headers_and_partition(cluster, topic):
    data = b"first\nsecond line\n\ncarriage\r\nlast without newline"
    result = invoke(
        ["produce", "-b", cluster.bootstrap_servers, "-t", topic, "-k", "order-7",
         "-H", "source=cli", "-H", "tag=a", "-H", "tag=b", "-p", "2"],
        input=data,
    )
    assert result.exit_code == 0, result.stderr
    assert "5 delivered" in result.stdout
    messages = consume(cluster.bootstrap_servers, topic, 5)
    # one message per line, only the "\n" stripped; an empty line is an empty payload
    assert sorted(m.value() for m in messages) == sorted(
        [b"first", b"second line", b"", b"carriage\r", b"last without newline"]
    )
    for m in messages:
        assert m.key() == b"order-7"
        assert m.partition() == 2
        assert headers_of(m) == [("source", b"cli"), ("tag", b"a"), ("tag", b"b")]
    # one partition, so the offsets give the input order
    assert [m.value() for m in sorted(messages, key=lambda m: m.offset())] == [
        b"first", b"second line", b"", b"carriage\r", b"last without newline"
    ]


@pytest.mark.parametrize("how", ["python -m waterdrop", "waterdrop script"])
def test_lines_from_files_and_stdin_in_a_subprocess(cluster, topic, tmp_path, how):
    one = tmp_path / "one.txt"
    one.write_bytes(b"a1\na2\n")
    two = tmp_path / "two.txt"
    two.write_bytes("b1 \u00e9\n".encode())
    proc = run(how, ["produce", "-b", cluster.bootstrap_servers, "-t", topic, "-p", "0",
                     str(one), "-", str(two)], input=b"s1\ns2\n")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    messages = consume(cluster.bootstrap_servers, topic, 5)
    assert [m.value() for m in sorted(messages, key=lambda m: m.offset())] == [
        b"a1", b"a2", b"s1", b"s2", "b1 \u00e9".encode()
    ]


def test_json_lines_override_the_command_line_defaults(cluster, topic):
    when = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc)
    lines = [
        {"payload": "plain"},
        {"payload": {"base64": base64.b64encode(b"\x00\xffbin").decode()}, "key": "k2",
         "partition": 1, "headers": {"tag": ["x", {"base64": "AAE="}], "extra": "e"}},
        {"payload": "no key", "key": None, "partition": None, "partition_key": "pk",
         "headers": {"source": None}},
        {"payload": "stamped", "timestamp": 1_700_000_000_123},
        {"payload": "iso", "timestamp": "2024-05-06T07:08:09+00:00"},
        {"payload": "binary-key", "key": {"base64": base64.b64encode(b"\x01\x02").decode()}},
    ]
    data = "\n".join(json.dumps(line) for line in lines) + "\n\n   \n"  # blank lines: skipped
    result = invoke(
        ["produce", "-b", cluster.bootstrap_servers, "-t", topic, "-f", "json",
         "-k", "default-key", "-H", "source=cli", "-p", "0", "--json"],
        input=data,
    )
    assert result.exit_code == 0, result.stderr
    summary = last_json(result.stdout)
    assert summary["delivered"] == 6 and summary["failed"] == 0 and summary["invalid"] == 0
    got = by_value(consume(cluster.bootstrap_servers, topic, 6))
    assert set(got) == {b"plain", b"\x00\xffbin", b"no key", b"stamped", b"iso", b"binary-key"}

    plain = got[b"plain"]
    assert (plain.key(), plain.partition(), headers_of(plain)) == (
        b"default-key", 0, [("source", b"cli")])

    binary = got[b"\x00\xffbin"]
    assert (binary.key(), binary.partition()) == (b"k2", 1)
    assert sorted(headers_of(binary)) == sorted(
        [("source", b"cli"), ("tag", b"x"), ("tag", b"\x00\x01"), ("extra", b"e")])

    keyless = got[b"no key"]
    assert keyless.key() is None
    assert headers_of(keyless) == []

    assert got[b"stamped"].timestamp()[1] == 1_700_000_000_123
    assert got[b"iso"].timestamp()[1] == int(when.timestamp() * 1000)
    assert got[b"binary-key"].key() == b"\x01\x02"
    per_partition = {(p["partition"]): p["delivered"] for p in summary["partitions"]}
    assert sum(per_partition.values()) == 6
    # plain, stamped, iso, binary-key: --partition 0; binary: 1; no key: where "pk" hashes
    assert per_partition.get(0, 0) >= 4 and per_partition.get(1, 0) >= 1


def test_json_from_a_file_through_the_script(cluster, topic, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(
        json.dumps({"payload": "one", "key": "a"}) + "\n"
        + json.dumps({"payload": None, "key": "gone"}) + "\n"  # a tombstone
    )
    proc = run("waterdrop script", ["produce", "-b", cluster.bootstrap_servers, "-t", topic,
                                    "--format", "json", "--json", str(source)])
    assert proc.returncode == 0, proc.stderr
    summary = last_json(proc.stdout)
    assert summary["delivered"] == 2
    assert summary["cluster"] == cluster.bootstrap_servers
    got = {m.key(): m.value() for m in consume(cluster.bootstrap_servers, topic, 2)}
    assert got == {b"a": b"one", b"gone": None}


def test_bad_lines_are_named_and_the_good_ones_still_delivered(cluster, tmp_path):
    # one partition: partition 5 does not exist and fails at delivery
    from tests.helpers import unique_topic

    topic = unique_topic("wd-cli")
    cluster.create_topic(topic, partitions=1, replication_factor=1)
    source = tmp_path / "orders.jsonl"
    source.write_text("\n".join([
        json.dumps({"payload": "good-1"}),
        "{not json",
        json.dumps({"payload": "good-3"}),
        json.dumps({"payload": "x", "key": ""}),
        json.dumps({"payload": "x", "partition": 5}),
        json.dumps({"payload": "x", "colour": "red"}),
        json.dumps(["not", "an", "object"]),
        json.dumps({"payload": "good-8"}),
    ]) + "\n")
    result = invoke(["produce", "-b", cluster.bootstrap_servers, "-t", topic, "-f", "json",
                     "--json", str(source)])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    where = str(source)
    assert any(f"{where}:2:" in e and "invalid JSON" in e for e in errors), errors
    assert any(f"{where}:4:" in e and "key" in e for e in errors), errors
    assert any(f"{where}:5:" in e and "unknown_partition" in e for e in errors), errors
    assert any(f"{where}:6:" in e and "colour" in e for e in errors), errors
    assert any(f"{where}:7:" in e and "object" in e for e in errors), errors
    assert len(errors) == 5
    summary = last_json(result.stdout)
    assert (summary["delivered"], summary["failed"], summary["invalid"]) == (3, 1, 4)
    assert [(e["line"], e["kind"]) for e in summary["errors"]] == [
        (2, "invalid"), (4, "invalid"), (5, "failed"), (6, "invalid"), (7, "invalid")]
    values = sorted(m.value() for m in consume(cluster.bootstrap_servers, topic, 3))
    assert values == [b"good-1", b"good-3", b"good-8"]


def test_embedded_cluster_by_default():
    result = invoke(["produce", "-t", "cli-embedded", "--partitions", "2", "-p", "1", "--json"],
                    input=b"a\nb\nc\n")
    assert result.exit_code == 0, result.stderr
    summary = last_json(result.stdout)
    assert summary["cluster"] == "mock"
    assert summary["delivered"] == 3
    assert summary["partitions"] == [{"topic": "cli-embedded", "partition": 1, "delivered": 3}]


def test_human_summary_counts_per_partition():
    result = invoke(["produce", "-t", "cli-human", "-p", "0"], input=b"a\nb\n")
    assert result.exit_code == 0, result.stderr
    assert "2 delivered, 0 failed, 0 invalid" in result.stdout
    assert "cli-human" in result.stdout


def test_unreachable_cluster_fails_promptly_and_clearly():
    servers = f"127.0.0.1:{closed_port()}"
    # the timeout is a hang detector: librdkafka's own defaults would wait minutes
    proc = run("python -m waterdrop", ["produce", "-b", servers, "-t", "t"], input=b"x\n",
               timeout=30)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "cannot reach the Kafka cluster" in proc.stderr
    assert servers in proc.stderr


def test_cluster_from_the_environment(cluster, topic):
    result = invoke(["produce", "-t", topic, "--json"], input=b"via env\n",
                    bootstrap_env=cluster.bootstrap_servers)
    assert result.exit_code == 0, result.stderr
    assert last_json(result.stdout)["cluster"] == cluster.bootstrap_servers
    assert [m.value() for m in consume(cluster.bootstrap_servers, topic, 1)] == [b"via env"]


def test_a_server_that_never_answers_is_reported_after_connect_timeout():
    import socket

    with socket.socket() as silent:  # accepts connections (the kernel does) and says nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        servers = f"127.0.0.1:{silent.getsockname()[1]}"
        proc = run("python -m waterdrop", ["produce", "-b", servers, "-t", "t",
                                           "--connect-timeout", "1500"], input=b"x\n",
                   timeout=30)
    assert proc.returncode == 1, proc.stderr
    assert f"cannot reach the Kafka cluster at {servers} within 1,500 ms" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unreachable_cluster_from_the_environment():
    servers = f"127.0.0.1:{closed_port()}"
    result = invoke(["produce", "-t", "t"], input=b"x\n", bootstrap_env=servers)
    assert result.exit_code == 1
    assert f"cannot reach the Kafka cluster at {servers}" in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-X", "no.such.setting=1"], ['no.such.setting=1', "No such configuration property"]),
        (["-X", "linger.ms=soon"], ["linger.ms=soon", "Invalid value"]),
        (["-X", "lingerms=5"], ["lingerms=5", 'did you mean "linger.ms"?']),
        (["-X", "linger.ms"], ["-X", "expected KEY=VALUE"]),
        (["-H", "novalue"], ["--header", "expected NAME=VALUE"]),
        (["-k", ""], ["--key", "must not be empty"]),
    ],
)
def test_bad_settings_and_arguments_are_usage_errors(args, expected):
    result = invoke(["produce", "-t", "cli-bad", *args], input=b"x\n")
    assert result.exit_code == 2, result.stdout + result.stderr
    for text in expected:
        assert text in result.stderr
    assert "delivered" not in result.stdout


def test_bad_topic_name_is_a_usage_error():
    proc = run("python -m waterdrop", ["produce", "-t", "no spaces!"], input=b"x\n")
    assert proc.returncode == 2
    assert "--topic" in proc.stderr
    assert "'no spaces!' has the character ' ': a topic name uses only" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_topic_above_kafkas_limit_is_a_usage_error():
    result = invoke(["produce", "-t", "t" * 300], input=b"x\n")
    assert result.exit_code == 2
    assert "--topic" in result.stderr
    assert "is 300 characters long, above Kafka's limit of 249" in result.stderr
    assert "delivered" not in result.stdout


def test_a_payload_above_max_payload_size_names_the_size_the_limit_and_the_option():
    result = invoke(["produce", "-t", "cli-big", "--json"], input=b"x" * 1_048_600 + b"\nok\n")
    assert result.exit_code == 1
    assert ("<stdin>:1: invalid input: payload: is 1,048,600 bytes, above max_payload_size "
            "1,000,012 (raise it with --max-payload-size)") in result.stderr
    assert last_json(result.stdout)["delivered"] == 1


def test_max_payload_size_raises_the_limit(cluster, topic):
    big = b"y" * 1_500_000  # above librdkafka's default message.max.bytes too
    result = invoke(["produce", "-b", cluster.bootstrap_servers, "-t", topic, "-p", "0",
                     "--max-payload-size", "2000000", "--json"], input=big + b"\n")
    assert result.exit_code == 0, result.stderr
    assert [m.value() for m in consume(cluster.bootstrap_servers, topic, 1)] == [big]


def test_summary_counts_have_thousands_separators():
    result = invoke(["produce", "-t", "cli-many", "-p", "0"],
                    input=b"".join(b"m%d\n" % i for i in range(1_234)))
    assert result.exit_code == 0, result.stderr
    assert "1,234 delivered, 0 failed, 0 invalid" in result.stdout


def test_unreadable_input_file_is_a_usage_error(tmp_path):
    result = invoke(["produce", "-t", "t", str(tmp_path / "missing.txt")])
    assert result.exit_code == 2
    assert "missing.txt" in result.stderr


def test_x_settings_reach_librdkafka(cluster, topic):
    result = invoke(["produce", "-b", cluster.bootstrap_servers, "-t", topic,
                     "-X", "compression.type=gzip", "-X", "linger.ms=0", "-X", "acks=1"],
                    input=b"zipped\n")
    assert result.exit_code == 0, result.stderr
    assert [m.value() for m in consume(cluster.bootstrap_servers, topic, 1)] == [b"zipped"]


def test_version():
    import waterdrop

    result = invoke(["--version"])
    assert result.exit_code == 0
    assert waterdrop.__version__ in result.stdout
    assert f"librdkafka {waterdrop.librdkafka_version()}" in result.stdout
    proc = run("waterdrop script", ["--version"])
    assert proc.returncode == 0 and proc.stdout == result.stdout


def test_a_delivery_the_broker_refuses_is_named(cluster):
    from tests.helpers import message_count, unique_topic

    topic = unique_topic("wd-cli")
    cluster.create_topic(topic, partitions=1, replication_factor=1)
    cluster.push_request_errors(0, ["msg_size_too_large"])  # the next Produce request fails
    result = invoke(["produce", "-b", cluster.bootstrap_servers, "-t", topic, "-X", "retries=0",
                     "--json"], input=b"a\nb\nc\n")
    assert result.exit_code == 1
    summary = last_json(result.stdout)
    assert summary["failed"] >= 1 and summary["delivered"] + summary["failed"] == 3
    for entry in summary["errors"]:
        assert entry["kind"] == "failed" and "msg_size_too_large" in entry["error"]
        assert f"<stdin>:{entry['line']}: delivery failed:" in result.stderr
    assert message_count(cluster.bootstrap_servers, topic) == summary["delivered"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_ends_the_input_and_sums_up(cluster, topic):
    env = dict(os.environ)
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "waterdrop", "produce", "-b", cluster.bootstrap_servers,
         "-t", topic, "--json"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        proc.stdin.write(b"before\nctrl-c\n")
        proc.stdin.flush()
        # both lines are in the topic: the command is now waiting on its open stdin
        assert len(consume(cluster.bootstrap_servers, topic, 2)) == 2
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, err
    summary = last_json(out.decode())
    assert summary["interrupted"] is True and summary["delivered"] == 2
    assert b"Traceback" not in err
