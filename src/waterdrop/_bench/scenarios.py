"""The five scenarios and the run that strings them together: where the clients meet (the
hosted MockCluster or a real broker), what each scenario measures and against which bar, and
the report (a dict, JSON-ready) a run produces.

The timed loops themselves are in :mod:`.clients`, the child processes in :mod:`.children`,
and the table drawn from the report in :mod:`.report`.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from typing import Any, Callable

from .clients import (
    confluent_producer,
    run_ck_batch,
    run_ck_callback,
    run_ck_sync,
    run_wd_async,
    run_wd_many,
    run_wd_sync,
    warm_up,
    waterdrop_producer,
)
from .processes import CProgram, HostedMockCluster, run_child
from .settings import COMMON, PAYLOAD, PAYLOAD_SIZE, TOPIC, log
from .stats import percentile, rate_summary


def versions() -> dict[str, Any]:
    """What ran: Python, the machine, and both clients with their librdkafka."""
    out: dict[str, Any] = {"python": platform.python_version(), "machine": platform.machine(),
                           "cpus": os.cpu_count()}
    try:
        import waterdrop

        out["waterdrop"] = waterdrop.__version__
        out["waterdrop_librdkafka"] = waterdrop.librdkafka_version()
        from waterdrop import _core

        built = os.path.getmtime(_core.__file__)
        out["waterdrop_core_built"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(built))
    except Exception as error:  # pragma: no cover - reported, not fatal
        out["waterdrop"] = f"unavailable: {error}"
    try:
        import confluent_kafka

        out["confluent_kafka"] = getattr(confluent_kafka, "__version__", None) or str(
            confluent_kafka.version())
        out["confluent_kafka_librdkafka"] = confluent_kafka.libversion()[0]
    except Exception as error:
        out["confluent_kafka"] = f"unavailable: {error}"
    return out


class Target:
    """Where a comparison runs: its bootstrap string and how to make a topic there."""

    def __init__(self, name: str, label: str, bootstrap: str,
                 create_topic: Callable[[str], None]) -> None:
        self.name = name
        self.label = label
        self.bootstrap = bootstrap
        self.create_topic = create_topic


def real_broker_target(bootstrap: str, topic: str = TOPIC) -> Target:
    """A real cluster: the topic is made (3 partitions) through confluent-kafka's AdminClient."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    brokers = len(admin.list_topics(timeout=30).brokers)

    def create(name: str) -> None:
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=3, replication_factor=min(3, max(1, brokers)))])
        for future in futures.values():
            try:
                future.result(30)
            except KafkaException as error:
                if error.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise
        # Wait for the leaders to be known.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            meta = admin.list_topics(name, timeout=10).topics.get(name)
            if meta and meta.error is None and meta.partitions and all(
                    p.leader >= 0 for p in meta.partitions.values()):
                return
            time.sleep(0.2)

    create(topic)
    return Target("real", f"real broker {bootstrap} ({brokers} broker{'s' * (brokers != 1)})",
                  bootstrap, create)


def scenario_async(target: Target, opts: dict[str, Any]) -> dict[str, Any]:
    n, rounds = opts["messages"], opts["rounds"]
    wd = waterdrop_producer(target.bootstrap)
    ck = confluent_producer(target.bootstrap)
    try:
        warm_up(wd, ck, TOPIC)
        run_wd_async(wd, TOPIC, max(1, n // 10))
        run_ck_callback(ck, TOPIC, max(1, n // 10))
        wd_s: list[tuple[float, float]] = []
        ck_s: list[tuple[float, float]] = []
        for r in range(rounds):
            wd_s.append(run_wd_async(wd, TOPIC, n))
            ck_s.append(run_ck_callback(ck, TOPIC, n))
            log(f"  [{target.name}] async round {r + 1}/{rounds}: waterdrop "
                f"{n / wd_s[-1][0]:,.0f} msg/s, confluent {n / ck_s[-1][0]:,.0f} msg/s")
    finally:
        wd.close()
        ck.flush(30)
    out = {"waterdrop": rate_summary(wd_s, n), "confluent": rate_summary(ck_s, n),
           "messages": n, "bar": 2.0}
    out["ratio"] = out["waterdrop"]["msgs_per_s"] / out["confluent"]["msgs_per_s"]
    out["cpu_ratio"] = out["confluent"]["cpu_us_per_msg"] / out["waterdrop"]["cpu_us_per_msg"]
    out["pass"] = out["ratio"] >= out["bar"]
    return out


def scenario_many(target: Target, opts: dict[str, Any]) -> dict[str, Any]:
    n, rounds, batch = opts["messages"], opts["rounds"], opts["batch"]
    program = opts.get("c_program")
    wd = waterdrop_producer(target.bootstrap)
    ck = confluent_producer(target.bootstrap)
    c = CProgram(program, target.bootstrap, TOPIC, n) if program else None
    try:
        warm_up(wd, ck, TOPIC)
        run_wd_many(wd, TOPIC, max(1, n // 10), batch)
        run_ck_batch(ck, TOPIC, max(1, n // 10), batch)
        if c is not None:
            c.round()  # its warm-up round, like the two others'
        wd_s: list[tuple[float, float]] = []
        c_s: list[tuple[float, float]] = []
        ck_s: list[tuple[float, float]] = []
        for r in range(rounds):
            wd_s.append(run_wd_many(wd, TOPIC, n, batch))
            if c is not None:
                c_s.append(c.round())
            ck_s.append(run_ck_batch(ck, TOPIC, n, batch))
            log(f"  [{target.name}] many round {r + 1}/{rounds}: waterdrop "
                f"{n / wd_s[-1][0]:,.0f}" + (f", C {n / c_s[-1][0]:,.0f}" if c else "")
                + f", confluent produce_batch {n / ck_s[-1][0]:,.0f} msg/s")
    finally:
        wd.close()
        ck.flush(30)
        if c is not None:
            c.close()
    out: dict[str, Any] = {"waterdrop": rate_summary(wd_s, n), "messages": n, "batch": batch,
                           "bar": 0.75, "confluent_produce_batch": rate_summary(ck_s, n)}
    if program:
        out["c"] = rate_summary(c_s, n)
        out["c"]["program"] = program
        out["c"]["librdkafka"] = c.version if c is not None else "?"
        out["ratio"] = out["waterdrop"]["msgs_per_s"] / out["c"]["msgs_per_s"]
        out["cpu_ratio"] = out["c"]["cpu_us_per_msg"] / out["waterdrop"]["cpu_us_per_msg"]
        out["pass"] = out["ratio"] >= out["bar"]
    else:
        out["c"] = None
        out["ratio"] = None
        out["pass"] = None
        out["note"] = ("C program not found (build it with bench/c/build.sh, or pass "
                       "--c-program): the produce_many_async-vs-C row is skipped")
    out["ratio_vs_confluent_batch"] = (out["waterdrop"]["msgs_per_s"]
                                       / out["confluent_produce_batch"]["msgs_per_s"])
    return out


def scenario_sync(target: Target, opts: dict[str, Any]) -> dict[str, Any]:
    n, rounds = opts["sync_messages"], opts["rounds"]
    wd = waterdrop_producer(target.bootstrap, **{"linger.ms": 0})
    ck = confluent_producer(target.bootstrap, **{"linger.ms": 0})
    result: dict[str, dict[str, list[float]]] = {
        "waterdrop": {"p50": [], "p99": [], "mean": []},
        "confluent": {"p50": [], "p99": [], "mean": []}}
    try:
        warm_up(wd, ck, TOPIC)
        run_wd_sync(wd, TOPIC, max(1, n // 10))
        run_ck_sync(ck, TOPIC, max(1, n // 10))
        for r in range(rounds):
            for name, fn, producer in (("waterdrop", run_wd_sync, wd),
                                       ("confluent", run_ck_sync, ck)):
                lat = sorted(fn(producer, TOPIC, n))
                mean = statistics.fmean(lat)  # raises when there are none (--sync-messages 0)
                p50, p99 = percentile(lat, 0.50), percentile(lat, 0.99)
                assert p50 is not None and p99 is not None
                result[name]["p50"].append(p50)
                result[name]["p99"].append(p99)
                result[name]["mean"].append(mean)
            log(f"  [{target.name}] sync round {r + 1}/{rounds}: waterdrop p50 "
                f"{result['waterdrop']['p50'][-1]:.3f} p99 {result['waterdrop']['p99'][-1]:.3f} ms"
                f", confluent p50 {result['confluent']['p50'][-1]:.3f}"
                f" p99 {result['confluent']['p99'][-1]:.3f} ms")
    finally:
        wd.close()
        ck.flush(30)
    out: dict[str, Any] = {"messages": n, "bar": 1.0}
    for name in ("waterdrop", "confluent"):
        out[name] = {f"{k}_ms": statistics.median(v) for k, v in result[name].items()}
        out[name]["rounds_p50_ms"] = [round(x, 4) for x in result[name]["p50"]]
        out[name]["rounds_p99_ms"] = [round(x, 4) for x in result[name]["p99"]]
    out["ratio_p50"] = out["waterdrop"]["p50_ms"] / out["confluent"]["p50_ms"]
    out["ratio_p99"] = out["waterdrop"]["p99_ms"] / out["confluent"]["p99_ms"]
    out["pass"] = out["ratio_p50"] <= 1.0 and out["ratio_p99"] <= 1.0
    return out


def scenario_memory(target: Target, opts: dict[str, Any]) -> dict[str, Any]:
    n, rounds = opts["inflight"], opts["memory_rounds"]
    runs: dict[str, list[dict[str, Any]]] = {"waterdrop": [], "confluent": []}
    for r in range(rounds):
        for client in ("waterdrop", "confluent"):
            runs[client].append(run_child("inflight", [
                "--client", client, "--bootstrap", target.bootstrap, "--topic", TOPIC,
                "--messages", str(n)]))
        log(f"  [{target.name}] memory round {r + 1}/{rounds}: peak RSS waterdrop "
            f"{runs['waterdrop'][-1]['peak_mib']:.1f} MiB, confluent "
            f"{runs['confluent'][-1]['peak_mib']:.1f} MiB")
    out: dict[str, Any] = {"messages": n, "bar": 1.0}
    for client, items in runs.items():
        out[client] = {key: statistics.median(item[key] for item in items)
                       for key in ("baseline_mib", "inflight_mib", "peak_mib", "produce_seconds")}
        out[client]["rounds_peak_mib"] = [item["peak_mib"] for item in items]
        out[client]["queued_at_peak"] = items[-1]["queued"]
    out["ratio"] = out["waterdrop"]["peak_mib"] / out["confluent"]["peak_mib"]
    out["ratio_above_baseline"] = (
        (out["waterdrop"]["peak_mib"] - out["waterdrop"]["baseline_mib"])
        / max(1e-9, out["confluent"]["peak_mib"] - out["confluent"]["baseline_mib"]))
    out["pass"] = out["ratio"] <= out["bar"]
    return out


def scenario_flat(target: Target, opts: dict[str, Any]) -> dict[str, Any]:
    unit, units = opts["flat_unit"], opts["flat_units"]
    out: dict[str, Any] = {"unit": unit, "units": units, "bar_pct": 2.0}
    for client in ("waterdrop", "confluent"):
        log(f"  [{target.name}] flat: {client}, {units} x {unit:,} messages ...")
        out[client] = run_child("flat", [
            "--client", client, "--bootstrap", target.bootstrap, "--topic", TOPIC,
            "--unit", str(unit), "--units", str(units)])
        log(f"  [{target.name}] flat: {client} RSS {out[client]['start_mib']:.1f} -> "
            f"{out[client]['end_mib']:.1f} MiB ({out[client]['change_pct']:+.2f} %)")
    out["pass"] = abs(out["waterdrop"]["change_pct"]) <= out["bar_pct"]
    return out


RUNNERS: dict[str, Callable[[Target, dict[str, Any]], dict[str, Any]]] = {
    "async": scenario_async, "many": scenario_many, "sync": scenario_sync,
    "memory": scenario_memory, "flat": scenario_flat,
}


def warm_broker(target: Target, messages: int) -> None:
    """A real broker is a JVM: until its JIT has compiled the produce path, its first few
    hundred thousand messages run slower and with long pauses, whichever client sends them.
    Both kinds of request the scenarios make (batches; one message per request with linger.ms
    0) go through it before the first measured round, so no client meets a cold broker."""
    started = time.monotonic()
    wd = waterdrop_producer(target.bootstrap)
    try:
        warm_up(wd, None, TOPIC)
        batch = [{"topic": TOPIC, "payload": PAYLOAD} for _ in range(min(messages, 10_000))]
        sent = 0
        while sent < messages:
            for handle in wd.produce_many_async(batch):
                handle.wait()
            sent += len(batch)
    finally:
        wd.close()
    wd = waterdrop_producer(target.bootstrap, **{"linger.ms": 0})
    try:
        for _ in range(max(100, messages // 200)):
            wd.produce_sync(topic=TOPIC, payload=PAYLOAD)
    finally:
        wd.close()
    log(f"[{target.name}] broker warmed up with {messages:,} messages in "
        f"{time.monotonic() - started:.1f} s")


def run_target(target: Target, opts: dict[str, Any]) -> dict[str, Any]:
    results: dict[str, Any] = {"label": target.label, "bootstrap": target.bootstrap}
    if target.name == "real" and opts.get("broker_warm_up"):
        warm_broker(target, opts["broker_warm_up"])
    for name in opts["scenarios"]:
        log(f"[{target.name}] scenario {name}")
        started = time.monotonic()
        try:
            results[name] = RUNNERS[name](target, opts)
        except Exception as error:
            log(f"[{target.name}] scenario {name} FAILED: {type(error).__name__}: {error}")
            results[name] = {"error": f"{type(error).__name__}: {error}"}
        results[name]["wall_seconds"] = round(time.monotonic() - started, 1)
        gc.collect()
    return results


def run_comparison(opts: dict[str, Any], *, mock: bool = True, real: str | None = None,
                   host_script: str | None = None) -> dict[str, Any]:
    """Run every selected scenario on the hosted MockCluster and/or a real broker."""
    report: dict[str, Any] = {"meta": versions(), "options": {
        k: v for k, v in opts.items() if k != "scenarios"}, "targets": {}}
    report["options"]["scenarios"] = list(opts["scenarios"])
    report["meta"]["settings"] = COMMON
    report["meta"]["payload_bytes"] = PAYLOAD_SIZE
    if mock:
        log("starting the MockCluster host process (3 brokers) ...")
        with HostedMockCluster([TOPIC], script=host_script) as cluster:
            target = Target("mock", f"MockCluster, 3 brokers, separate process (pid {cluster.pid})",
                            cluster.bootstrap_servers, cluster.create_topic)
            report["targets"]["mock"] = run_target(target, opts)
    if real:
        log(f"real broker at {real} ...")
        report["targets"]["real"] = run_target(real_broker_target(real), opts)
    return report

