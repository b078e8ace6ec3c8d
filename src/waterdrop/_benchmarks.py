"""Side-by-side benchmark scenarios: waterdrop vs confluent-kafka vs librdkafka's own C loop.

Shared by ``bench/compare.py`` (the standalone script) and ``waterdrop bench --compare`` (the
installed command), so that both print the same table. Not part of the public API.

Every scenario runs against one cluster that neither client under test owns: a MockCluster
hosted by a separate process (:class:`HostedMockCluster`, ``bench/mockcluster_host.py``), or a
real broker. Both clients get the same librdkafka settings (:data:`COMMON`), 100-byte payloads,
and rounds alternate between the two sides (A, B, A, B, ...); the table shows medians.

Scenarios (the bars are those of the performance issue):

``async``   produce_async, every handle waited, vs confluent-kafka produce() with an
            on_delivery callback plus poll(0) per message and a final flush().   bar >= 2.0x
``many``    produce_many_async in batches of 10,000, every handle waited, vs the C program
            bench/c/produce_bench (rd_kafka_produce F_COPY loop).               bar >= 0.75x
            confluent-kafka's produce_batch() is shown beside it for reference.
``sync``    produce_sync with linger.ms 0, 1,000 in a row: p50/p99 latency vs confluent-kafka
            produce() + flush().                                                bar <= 1.0x
``memory``  peak RSS with 1,000,000 messages in flight (linger.ms 120,000 so they stay queued),
            each client in a fresh subprocess of its own.                       bar <= 1.0x
``flat``    RSS from 2 to 10 million messages produced and acknowledged in a loop (sampled
            after every million), a fresh subprocess per client.                bar |change| <= 2 %
            The change from 1 million is shown beside it, with the part of RSS in glibc's
            per-thread arenas (librdkafka's broker threads build their requests there).

The subprocesses (memory, flat, and the profiling driver ``path``) load this file *by path*
under another module name, so a confluent-kafka child never imports the waterdrop package (and
its librdkafka) and its RSS stays comparable.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from typing import Any, Callable

#: librdkafka settings both clients get, so only the binding differs.
COMMON: dict[str, Any] = {
    "linger.ms": 5,
    "acks": "all",
    "queue.buffering.max.messages": 2_000_000,
    "queue.buffering.max.kbytes": 4_000_000,
    # waterdrop's own default (KAFKA_DEFAULTS), given to confluent-kafka too so that both
    # send with the same socket options
    "socket.nagle.disable": True,
}
#: Keeps messages queued in the client: no batch fills up or lingers out while we look.
#: (message.timeout.ms, 300,000 by default, must stay above linger.ms.)
QUEUED: dict[str, Any] = {
    "linger.ms": 120_000,
    "batch.num.messages": 1_000_000,
    "batch.size": 2_147_483_647,
}
PAYLOAD_SIZE = 100
PAYLOAD = b"x" * PAYLOAD_SIZE
TOPIC = "waterdrop-compare"
SCENARIOS = ("async", "many", "sync", "memory", "flat")

#: Defaults of a full run and of ``--quick`` (a smoke test of the harness, not a measurement).
DEFAULTS: dict[str, Any] = {
    "rounds": 5,
    "messages": 100_000,
    "batch": 10_000,
    "sync_messages": 1_000,
    "inflight": 1_000_000,
    "memory_rounds": 3,
    "flat_unit": 1_000_000,
    "flat_units": 10,
    "broker_warm_up": 500_000,
}
QUICK: dict[str, Any] = {
    "rounds": 2,
    "messages": 20_000,
    "batch": 10_000,
    "sync_messages": 200,
    "inflight": 100_000,
    "memory_rounds": 1,
    "flat_unit": 100_000,
    "flat_units": 4,
    "broker_warm_up": 20_000,
}

_THIS_FILE = os.path.abspath(__file__)


def log(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


def rss_kib() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in KiB, from /proc (Linux)."""
    rss = hwm = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


def malloc_in_use_kib() -> int | None:
    """Bytes the C heap has handed out (glibc mallinfo2: uordblks + hblkhd), KiB; None where
    unavailable. Flat while RSS grows means fragmentation or a high-water mark, not a leak."""
    global _MALLINFO2
    if _MALLINFO2 is None:
        try:
            import ctypes

            class _Info(ctypes.Structure):
                _fields_ = [(name, ctypes.c_size_t) for name in (
                    "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                    "uordblks", "fordblks", "keepcost")]

            fn = ctypes.CDLL(None).mallinfo2
            fn.restype = _Info
            _MALLINFO2 = fn
        except (OSError, AttributeError):
            _MALLINFO2 = False
    if not _MALLINFO2:
        return None
    info = _MALLINFO2()
    return (info.uordblks + info.hblkhd) // 1024


_MALLINFO2: Any = None

_ARENA_ALIGN = 64 * 1024 * 1024


def rss_split_kib() -> tuple[int, int] | None:
    """(RSS in glibc's per-thread arenas, all other RSS), KiB, from /proc/self/smaps; None
    where unreadable. A thread arena is an anonymous mapping that starts on a 64 MiB boundary
    (glibc's heap size on 64-bit): librdkafka's broker threads allocate their request
    buffers there, so a larger request than any before raises RSS without a leak."""
    arenas = other = 0
    in_arena = False
    try:
        with open("/proc/self/smaps") as smaps:
            for line in smaps:
                first = line.split(None, 6)
                if "-" in first[0] and len(first) >= 5 and ":" in first[3]:
                    start = int(first[0].split("-", 1)[0], 16)
                    in_arena = len(first) == 5 and start % _ARENA_ALIGN == 0
                elif first[0] == "Rss:":
                    if in_arena:
                        arenas += int(first[1])
                    else:
                        other += int(first[1])
    except OSError:
        return None
    return arenas, other


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, int(round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def versions() -> dict[str, Any]:
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


# ----------------------------------------------------------------------------- the cluster


def _end_stdin_child(process: subprocess.Popen[str], timeout: float, *, kill: bool) -> None:
    """End a child that lives until its stdin closes: close it, wait, then escalate (SIGTERM
    for the cluster host, which cleans up on it; SIGKILL for the C program)."""
    if process.poll() is not None:
        return
    try:
        process.stdin.close()  # type: ignore[union-attr]
    except OSError:
        pass
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        if kill:
            process.kill()
            process.wait()
        else:
            process.terminate()
            process.wait(timeout)


class HostedMockCluster:
    """A 3-broker MockCluster in a child process (``bench/mockcluster_host.py`` or this module's
    ``host`` role). Closing stdin ends it."""

    def __init__(self, topics: list[str], brokers: int = 3, script: str | None = None,
                 partitions: int = 3, replication_factor: int = 3) -> None:
        args = ["--brokers", str(brokers), "--partitions", str(partitions),
                "--replication-factor", str(replication_factor)]
        for topic in topics:
            args += ["--topic", topic]
        command = [sys.executable, script, *args] if script else _child_command("host", args)
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, bufsize=1)
        line = self.process.stdout.readline().strip()  # type: ignore[union-attr]
        if not line:
            self.close()
            raise RuntimeError(f"the mock cluster host exited ({self.process.returncode}) "
                               "without printing its bootstrap servers")
        self.bootstrap_servers = line
        self.pid = self.process.pid

    def command(self, line: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        if not answer.startswith("ok"):
            raise RuntimeError(f"mock cluster host: {line!r} -> {answer!r}")
        return answer

    def create_topic(self, topic: str, partitions: int = 3, replication_factor: int = 3) -> None:
        self.command(f"topic {topic} {partitions} {replication_factor}")

    def close(self) -> None:
        _end_stdin_child(self.process, 15, kill=False)

    def __enter__(self) -> HostedMockCluster:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def host_main(argv: list[str]) -> int:
    """The mock cluster host process: see bench/mockcluster_host.py."""
    parser = argparse.ArgumentParser(prog="mockcluster_host", description=host_main.__doc__)
    parser.add_argument("--brokers", type=int, default=3)
    parser.add_argument("--topic", action="append", default=[])
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--replication-factor", type=int, default=3)
    args = parser.parse_args(argv)

    from waterdrop.testing import MockCluster

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    cluster = MockCluster(brokers=args.brokers)
    lock = threading.Lock()
    try:
        for topic in args.topic:
            cluster.create_topic(topic, partitions=args.partitions,
                                 replication_factor=args.replication_factor)
        print(cluster.bootstrap_servers, flush=True)

        def serve_stdin() -> None:
            for raw in sys.stdin:
                words = raw.split()
                if not words:
                    continue
                try:
                    if words[0] == "topic" and len(words) >= 2:
                        partitions = int(words[2]) if len(words) > 2 else args.partitions
                        rf = int(words[3]) if len(words) > 3 else args.replication_factor
                        with lock:
                            cluster.create_topic(words[1], partitions=partitions,
                                                 replication_factor=rf)
                        answer = f"ok topic {words[1]}"
                    elif words[0] == "ping":
                        answer = "ok ping"
                    elif words[0] == "quit":
                        print("ok quit", flush=True)
                        break
                    else:
                        answer = f"error unknown command {raw.strip()!r}"
                except Exception as error:
                    answer = f"error {type(error).__name__}: {error}"
                print(answer, flush=True)
            stop.set()  # stdin closed (the parent is gone) or quit

        threading.Thread(target=serve_stdin, name="stdin", daemon=True).start()
        while not stop.wait(1.0):
            pass
    finally:
        cluster.close()
    return 0


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


# ----------------------------------------------------------------------------- clients


def waterdrop_producer(bootstrap: str, **overrides: Any) -> Any:
    from waterdrop import Producer

    return Producer(kafka={"bootstrap.servers": bootstrap, **COMMON, **overrides},
                    max_wait_timeout=300_000)


def confluent_producer(bootstrap: str, **overrides: Any) -> Any:
    import confluent_kafka

    return confluent_kafka.Producer({"bootstrap.servers": bootstrap, **COMMON, **overrides})


def warm_up(wd: Any, ck: Any, topic: str) -> None:
    if wd is not None:
        # Not produce_sync: with a large linger.ms that would wait the linger out.
        handle = wd.produce_async(topic=topic, payload=b"warm-up")
        wd.client.flush(60_000)
        handle.wait()
    if ck is not None:
        errors: list[Any] = []
        ck.produce(topic, b"warm-up", on_delivery=lambda err, msg: errors.append(err))
        ck.flush(60)
        if errors != [None]:
            raise RuntimeError(f"confluent-kafka warm-up failed: {errors}")


def run_wd_async(producer: Any, topic: str, n: int) -> tuple[float, float]:
    """produce_async n times, then wait for every handle; seconds."""
    produce = producer.produce_async
    payload = PAYLOAD
    started, cpu = time.perf_counter(), time.process_time()
    handles = [produce(topic=topic, payload=payload) for _ in range(n)]
    for handle in handles:
        handle.wait()
    return time.perf_counter() - started, time.process_time() - cpu


def run_wd_many(producer: Any, topic: str, n: int, batch: int) -> tuple[float, float]:
    """produce_many_async in batches, then wait for every handle; seconds. The batch list is
    built before the clock starts (10,000 distinct dicts, reused for every call)."""
    messages = [{"topic": topic, "payload": PAYLOAD} for _ in range(batch)]
    produce_many = producer.produce_many_async
    started, cpu = time.perf_counter(), time.process_time()
    handles: list[Any] = []
    remaining = n
    while remaining > 0:
        chunk = messages if remaining >= batch else messages[:remaining]
        handles.extend(produce_many(chunk))
        remaining -= len(chunk)
    for handle in handles:
        handle.wait()
    return time.perf_counter() - started, time.process_time() - cpu


def run_ck_callback(producer: Any, topic: str, n: int) -> tuple[float, float]:
    """confluent-kafka: produce() + on_delivery + poll(0) per message, final flush(); seconds."""
    delivered = 0
    failed = 0

    def on_delivery(err: Any, msg: Any) -> None:
        nonlocal delivered, failed
        if err is None:
            delivered += 1
        else:
            failed += 1

    produce = producer.produce
    poll = producer.poll
    payload = PAYLOAD
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        produce(topic, payload, on_delivery=on_delivery)
        poll(0)
    producer.flush()
    elapsed = time.perf_counter() - started, time.process_time() - cpu
    if delivered != n:
        raise RuntimeError(f"confluent-kafka: {delivered} of {n} delivered, {failed} failed")
    return elapsed


def run_ck_batch(producer: Any, topic: str, n: int, batch: int) -> tuple[float, float]:
    """confluent-kafka produce_batch() in batches + on_delivery, poll(0) per batch, flush()."""
    delivered = 0

    def on_delivery(err: Any, msg: Any) -> None:
        nonlocal delivered
        if err is None:
            delivered += 1

    template = [{"value": PAYLOAD} for _ in range(batch)]
    started, cpu = time.perf_counter(), time.process_time()
    remaining = n
    while remaining > 0:
        size = min(batch, remaining)
        # produce_batch adds an '_error' key to failed dicts only; none fail here (counted).
        queued = producer.produce_batch(topic, template if size == batch else template[:size],
                                        on_delivery=on_delivery)
        if queued != size:
            raise RuntimeError(f"confluent-kafka produce_batch queued {queued} of {size}")
        producer.poll(0)
        remaining -= size
    producer.flush()
    elapsed = time.perf_counter() - started, time.process_time() - cpu
    if delivered != n:
        raise RuntimeError(f"confluent-kafka produce_batch: {delivered} of {n} delivered")
    return elapsed


class CProgram:
    """bench/c/produce_bench kept running (warm, connected) between rounds: one round per
    line on its stdin, so its rounds alternate with the other client's like theirs do."""

    def __init__(self, program: str, bootstrap: str, topic: str, n: int) -> None:
        self.process = subprocess.Popen(
            [program, bootstrap, topic, str(n), str(PAYLOAD_SIZE), "stdin"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        ready = self.process.stdout.readline().strip()  # type: ignore[union-attr]
        if ready != "ready":
            self.close()
            raise RuntimeError(f"C program did not start (said {ready!r})")
        self.version = "?"

    def round(self) -> tuple[float, float]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"C program exited ({self.process.wait()})")
            if line.startswith("{"):
                record = json.loads(line)
                if record["failed"]:
                    raise RuntimeError(f"C program: {record['failed']} messages failed")
                self.version = record.get("librdkafka", "?")
                return float(record["seconds"]), float(record.get("cpu_seconds", "nan"))

    def close(self) -> None:
        _end_stdin_child(self.process, 60, kill=True)


def find_c_program(explicit: str | None = None) -> str | None:
    candidates = [explicit, os.environ.get("WATERDROP_BENCH_C_PROGRAM"),
                  os.path.join(os.getcwd(), "bench", "c", "produce_bench")]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


# ----------------------------------------------------------------------------- scenarios


def _summary(values: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(values), "rounds": values}


def _rate_summary(timings: list[tuple[float, float]], n: int) -> dict[str, Any]:
    """Rounds of (wall seconds, process CPU seconds): msgs/s (wall) and CPU µs per message
    (every thread of the client's process; steadier than wall time on a loaded machine)."""
    rates = [n / wall for wall, _ in timings]
    cpu_us = [cpu * 1e6 / n for _, cpu in timings]
    return {"msgs_per_s": statistics.median(rates), "rounds_msgs_per_s": [round(r) for r in rates],
            "rounds_seconds": [round(wall, 4) for wall, _ in timings],
            "cpu_us_per_msg": statistics.median(cpu_us),
            "rounds_cpu_us_per_msg": [round(c, 3) for c in cpu_us]}


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
    out = {"waterdrop": _rate_summary(wd_s, n), "confluent": _rate_summary(ck_s, n),
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
    out: dict[str, Any] = {"waterdrop": _rate_summary(wd_s, n), "messages": n, "batch": batch,
                           "bar": 0.75, "confluent_produce_batch": _rate_summary(ck_s, n)}
    if program:
        out["c"] = _rate_summary(c_s, n)
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


def run_wd_sync(producer: Any, topic: str, n: int) -> list[float]:
    produce_sync = producer.produce_sync
    payload = PAYLOAD
    clock = time.perf_counter_ns
    out = []
    for _ in range(n):
        t0 = clock()
        produce_sync(topic=topic, payload=payload)
        out.append((clock() - t0) / 1e6)
    return out


def run_ck_sync(producer: Any, topic: str, n: int) -> list[float]:
    errors: list[Any] = []

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(err)

    produce = producer.produce
    flush = producer.flush
    payload = PAYLOAD
    clock = time.perf_counter_ns
    out = []
    for _ in range(n):
        t0 = clock()
        produce(topic, payload, on_delivery=on_delivery)
        flush()
        out.append((clock() - t0) / 1e6)
    if errors:
        raise RuntimeError(f"confluent-kafka sync: {len(errors)} failed: {errors[0]}")
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
                result[name]["p50"].append(percentile(lat, 0.50))
                result[name]["p99"].append(percentile(lat, 0.99))
                result[name]["mean"].append(statistics.fmean(lat))
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


def _run_child(role: str, args: list[str], timeout: float = 3600) -> dict[str, Any]:
    proc = subprocess.run(_child_command(role, args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child {role} {args} failed ({proc.returncode}): "
                           f"{proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def scenario_memory(target: Target, opts: dict[str, Any]) -> dict[str, Any]:
    n, rounds = opts["inflight"], opts["memory_rounds"]
    runs: dict[str, list[dict[str, Any]]] = {"waterdrop": [], "confluent": []}
    for r in range(rounds):
        for client in ("waterdrop", "confluent"):
            runs[client].append(_run_child("inflight", [
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
        out[client] = _run_child("flat", [
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


def _pool(parts: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [x for p in parts for x in p["rounds_msgs_per_s"]]
    out: dict[str, Any] = {"msgs_per_s": statistics.median(rates), "rounds_msgs_per_s": rates}
    cpu = [x for p in parts for x in p.get("rounds_cpu_us_per_msg", [])]
    if cpu:
        out["cpu_us_per_msg"] = statistics.median(cpu)
        out["rounds_cpu_us_per_msg"] = cpu
    return out


def combine_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs' reports as one: rounds pooled, medians over all of them (the flatness
    run with the median change stands for all, every run's change listed)."""
    if len(reports) == 1:
        return reports[0]
    first = reports[0]
    out: dict[str, Any] = {"meta": dict(first["meta"]), "options": dict(first["options"]),
                           "targets": {}, "runs": len(reports)}
    out["options"]["rounds"] = sum(r["options"]["rounds"] for r in reports)
    med = statistics.median
    for name in first["targets"]:
        runs = [r["targets"][name] for r in reports if name in r["targets"]]
        target: dict[str, Any] = {"label": runs[0]["label"] + f", {len(runs)} runs pooled",
                                  "bootstrap": runs[0]["bootstrap"]}
        ok = [t["async"] for t in runs if "async" in t and "error" not in t["async"]]
        if ok:
            a: dict[str, Any] = {"messages": ok[0]["messages"], "bar": 2.0}
            for client in ("waterdrop", "confluent"):
                a[client] = _pool([t[client] for t in ok])
            a["ratio"] = a["waterdrop"]["msgs_per_s"] / a["confluent"]["msgs_per_s"]
            if a["waterdrop"].get("cpu_us_per_msg") and a["confluent"].get("cpu_us_per_msg"):
                a["cpu_ratio"] = (a["confluent"]["cpu_us_per_msg"]
                                  / a["waterdrop"]["cpu_us_per_msg"])
            a["pass"] = a["ratio"] >= 2.0
            a["ratio_per_run"] = [t["ratio"] for t in ok]
            target["async"] = a
        ok = [t["many"] for t in runs if "many" in t and "error" not in t["many"]]
        if ok:
            m: dict[str, Any] = {"messages": ok[0]["messages"], "batch": ok[0]["batch"],
                                 "bar": 0.75}
            for client in ("waterdrop", "confluent_produce_batch", "c"):
                parts = [t[client] for t in ok if t.get(client)]
                m[client] = _pool(parts) if parts else None
            if m["c"]:
                m["ratio"] = m["waterdrop"]["msgs_per_s"] / m["c"]["msgs_per_s"]
                if m["waterdrop"].get("cpu_us_per_msg") and m["c"].get("cpu_us_per_msg"):
                    m["cpu_ratio"] = m["c"]["cpu_us_per_msg"] / m["waterdrop"]["cpu_us_per_msg"]
                m["pass"] = m["ratio"] >= 0.75
                m["ratio_per_run"] = [t["ratio"] for t in ok]
            else:
                m["ratio"] = m["pass"] = None
                m["note"] = ok[0].get("note")
            m["ratio_vs_confluent_batch"] = (m["waterdrop"]["msgs_per_s"]
                                             / m["confluent_produce_batch"]["msgs_per_s"])
            target["many"] = m
        ok = [t["sync"] for t in runs if "sync" in t and "error" not in t["sync"]]
        if ok:
            y: dict[str, Any] = {"messages": ok[0]["messages"], "bar": 1.0}
            for client in ("waterdrop", "confluent"):
                y[client] = {
                    "p50_ms": med([x for t in ok for x in t[client]["rounds_p50_ms"]]),
                    "p99_ms": med([x for t in ok for x in t[client]["rounds_p99_ms"]]),
                    "rounds_p50_ms": [x for t in ok for x in t[client]["rounds_p50_ms"]],
                    "rounds_p99_ms": [x for t in ok for x in t[client]["rounds_p99_ms"]]}
            y["ratio_p50"] = y["waterdrop"]["p50_ms"] / y["confluent"]["p50_ms"]
            y["ratio_p99"] = y["waterdrop"]["p99_ms"] / y["confluent"]["p99_ms"]
            y["pass"] = y["ratio_p50"] <= 1.0 and y["ratio_p99"] <= 1.0
            target["sync"] = y
        ok = [t["memory"] for t in runs if "memory" in t and "error" not in t["memory"]]
        if ok:
            mem: dict[str, Any] = {"messages": ok[0]["messages"], "bar": 1.0}
            for client in ("waterdrop", "confluent"):
                mem[client] = {k: med([t[client][k] for t in ok])
                               for k in ("baseline_mib", "inflight_mib", "peak_mib")}
                mem[client]["rounds_peak_mib"] = [x for t in ok
                                                  for x in t[client]["rounds_peak_mib"]]
            mem["ratio"] = mem["waterdrop"]["peak_mib"] / mem["confluent"]["peak_mib"]
            mem["ratio_above_baseline"] = (
                (mem["waterdrop"]["peak_mib"] - mem["waterdrop"]["baseline_mib"])
                / (mem["confluent"]["peak_mib"] - mem["confluent"]["baseline_mib"]))
            mem["pass"] = mem["ratio"] <= 1.0
            target["memory"] = mem
        ok = [t["flat"] for t in runs if "flat" in t and "error" not in t["flat"]]
        if ok:
            flat = dict(sorted(ok, key=lambda t: t["waterdrop"]["change_pct"])[len(ok) // 2])
            flat["change_pct_per_run"] = {c: [t[c]["change_pct"] for t in ok]
                                          for c in ("waterdrop", "confluent")}
            flat["change_pct_from_1st_per_run"] = {
                c: [t[c].get("change_pct_from_1st") for t in ok]
                for c in ("waterdrop", "confluent")}
            target["flat"] = flat
        out["targets"][name] = target
    return out


# ----------------------------------------------------------------------------- the table


def _fmt_rate(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f} msg/s"


def _fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def _fmt_cpu(x: dict[str, Any]) -> str:
    value = x.get("cpu_us_per_msg")
    return "-" if value is None else f"{value:.2f} us/msg"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def table_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """(scenario, waterdrop, baseline, ratio, bar, verdict) rows for one target."""
    rows: list[tuple[str, str, str, str, str, str]] = []
    r = results.get("async")
    if r:
        if "error" in r:
            rows.append(("produce_async", "error", r["error"][:40], "", ">= 2.0x", "FAIL"))
        else:
            rows.append(("produce_async, all waited", _fmt_rate(r["waterdrop"]["msgs_per_s"]),
                         "confluent " + _fmt_rate(r["confluent"]["msgs_per_s"]),
                         _fmt_ratio(r["ratio"]), ">= 2.0x", _verdict(r["pass"])))
            if r.get("cpu_ratio"):
                rows.append(("  CPU per message (speed-up)", _fmt_cpu(r["waterdrop"]),
                             "confluent " + _fmt_cpu(r["confluent"]),
                             _fmt_ratio(r["cpu_ratio"]), "", ""))
    r = results.get("many")
    if r:
        if "error" in r:
            rows.append(("produce_many_async", "error", r["error"][:40], "", ">= 0.75x", "FAIL"))
        else:
            wd = _fmt_rate(r["waterdrop"]["msgs_per_s"])
            if r["c"]:
                rows.append(("produce_many_async x10k", wd, "C " + _fmt_rate(r["c"]["msgs_per_s"]),
                             _fmt_ratio(r["ratio"]), ">= 0.75x", _verdict(r["pass"])))
                if r.get("cpu_ratio"):
                    rows.append(("  CPU per message (C/wd)", _fmt_cpu(r["waterdrop"]),
                                 "C " + _fmt_cpu(r["c"]), _fmt_ratio(r["cpu_ratio"]), "", ""))
            else:
                rows.append(("produce_many_async x10k", wd, "C: not built (skipped)", "-",
                             ">= 0.75x", "n/a"))
            rows.append(("  (ref) vs confluent batch", wd, "confluent produce_batch "
                         + _fmt_rate(r["confluent_produce_batch"]["msgs_per_s"]),
                         _fmt_ratio(r["ratio_vs_confluent_batch"]), "", ""))
    r = results.get("sync")
    if r:
        if "error" in r:
            rows.append(("produce_sync", "error", r["error"][:40], "", "<= 1.0x", "FAIL"))
        else:
            rows.append(("produce_sync p50, linger 0", f"{r['waterdrop']['p50_ms']:.3f} ms",
                         f"confluent {r['confluent']['p50_ms']:.3f} ms",
                         _fmt_ratio(r["ratio_p50"]), "<= 1.0x",
                         _verdict(r["ratio_p50"] <= 1.0)))
            rows.append(("produce_sync p99, linger 0", f"{r['waterdrop']['p99_ms']:.3f} ms",
                         f"confluent {r['confluent']['p99_ms']:.3f} ms",
                         _fmt_ratio(r["ratio_p99"]), "<= 1.0x",
                         _verdict(r["ratio_p99"] <= 1.0)))
    r = results.get("memory")
    if r:
        if "error" in r:
            rows.append(("peak RSS, 1M in flight", "error", r["error"][:40], "", "<= 1.0x", "FAIL"))
        else:
            n = r["messages"]
            rows.append((f"peak RSS, {n / 1e6:g}M in flight", f"{r['waterdrop']['peak_mib']:.1f} MiB",
                         f"confluent {r['confluent']['peak_mib']:.1f} MiB",
                         _fmt_ratio(r["ratio"]), "<= 1.0x", _verdict(r["pass"])))
            rows.append(("  above process baseline",
                         f"{r['waterdrop']['peak_mib'] - r['waterdrop']['baseline_mib']:.1f} MiB",
                         "confluent "
                         f"{r['confluent']['peak_mib'] - r['confluent']['baseline_mib']:.1f} MiB",
                         _fmt_ratio(r["ratio_above_baseline"]), "", ""))
    r = results.get("flat")
    if r:
        if "error" in r:
            rows.append(("RSS flat", "error", r["error"][:40], "", "<= 2 %", "FAIL"))
        else:
            def flat(x: dict[str, Any]) -> str:
                return f"{x['start_mib']:.1f}->{x['end_mib']:.1f} MiB {x['change_pct']:+.2f}%"

            def from_1st(x: dict[str, Any]) -> str:
                if "first_mib" not in x:
                    return "-"
                return (f"{x['first_mib']:.1f}->{x['end_mib']:.1f} MiB "
                        f"{x['change_pct_from_1st']:+.2f}%")

            def arenas(x: dict[str, Any]) -> str:
                a, o = x.get("thread_arenas_mib") or [None], x.get("other_rss_mib") or [None]
                if None in a or None in o:
                    return "-"
                return f"{a[-1] - a[0]:+.2f} | {o[-1] - o[0]:+.2f} MiB"

            unit, units = r["unit"], r["units"]
            start = 2 if units > 2 else 1
            name = f"RSS {start * unit / 1e6:g}M..{units * unit / 1e6:g}M msgs"
            rows.append((name, flat(r["waterdrop"]), "confluent " + flat(r["confluent"]), "",
                         "|chg| <= 2 %", _verdict(r["pass"])))
            rows.append((f"  from {unit / 1e6:g}M (before settling)", from_1st(r["waterdrop"]),
                         "confluent " + from_1st(r["confluent"]), "", "", ""))
            rows.append((f"  thread arenas | rest, {unit / 1e6:g}M..", arenas(r["waterdrop"]),
                         "confluent " + arenas(r["confluent"]), "", "", ""))

            def heap(x: dict[str, Any]) -> str:
                h = x.get("malloc_in_use_mib") or []
                return f"{h[0]:.2f}->{h[-1]:.2f} MiB" if h and None not in h else "-"

            rows.append(("  C heap in use (mallinfo2)", heap(r["waterdrop"]),
                         "confluent " + heap(r["confluent"]), "", "", ""))
    return rows


def format_report(report: dict[str, Any]) -> str:
    meta = report["meta"]
    opts = report["options"]
    lines = [
        "waterdrop vs confluent-kafka vs librdkafka C, "
        f"{meta.get('payload_bytes', PAYLOAD_SIZE)} B payloads, medians of "
        f"{opts['rounds']} alternating rounds x {opts['messages']:,} messages",
        f"waterdrop {meta.get('waterdrop')} (librdkafka {meta.get('waterdrop_librdkafka')}), "
        f"confluent-kafka {meta.get('confluent_kafka')} (librdkafka "
        f"{meta.get('confluent_kafka_librdkafka')}), Python {meta['python']}, "
        f"{meta['cpus']} CPUs" + (f", _core built {meta['waterdrop_core_built']} UTC"
                                  if meta.get("waterdrop_core_built") else ""),
        "settings (both): " + ", ".join(f"{k}={v}" for k, v in COMMON.items()),
    ]
    headers = ("scenario", "waterdrop", "baseline", "ratio", "bar", "")
    for name, results in report["targets"].items():
        rows = table_rows(results)
        widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
                  for i, h in enumerate(headers)]
        lines.append("")
        lines.append(f"== {results['label']}")
        lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
        lines.append("  ".join("-" * w for w in widths))
        for row in rows:
            lines.append("  ".join(
                cell.rjust(w) if i in (1, 3) else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths))).rstrip())
        notes = [results[s]["note"] for s in SCENARIOS
                 if isinstance(results.get(s), dict) and results[s].get("note")]
        lines.extend(f"note: {note}" for note in notes)
    if len(report["targets"]) > 1:
        lines.append("")
        lines.append("ratios side by side (" + " | ".join(report["targets"]) + ")")
        per_target = {t: {row[0]: row[3] for row in table_rows(r)}
                      for t, r in report["targets"].items()}
        first = next(iter(report["targets"].values()))
        for row in table_rows(first):
            if not row[3]:
                continue
            lines.append((f"  {row[0]:<30} " + " | ".join(
                per_target[t].get(row[0], "-").rjust(7) for t in report["targets"])
                + (f"   bar {row[4]}" if row[4] else "")).rstrip())
    return "\n".join(lines)


# ----------------------------------------------------------------------------- children


def _child_command(role: str, args: list[str]) -> list[str]:
    """Run this file's ``child_main`` in a fresh interpreter *without importing the waterdrop
    package* (the file is loaded by path under another name)."""
    loader = ("import importlib.util as u, sys; "
              f"s = u.spec_from_file_location('_waterdrop_bench_child', {_THIS_FILE!r}); "
              "m = u.module_from_spec(s); sys.modules[s.name] = m; s.loader.exec_module(m); "
              "sys.exit(m.child_main(sys.argv[1:]))")
    return [sys.executable, "-c", loader, role, *args]


def _child_inflight(args: argparse.Namespace) -> dict[str, Any]:
    """Enqueue N messages that stay queued (linger.ms 120 s), measure RSS, then deliver all."""
    n = args.messages
    payload = PAYLOAD
    topic = args.topic
    if args.client == "waterdrop":
        producer = waterdrop_producer(args.bootstrap, **QUEUED)
        warm_up(producer, None, topic)
        baseline, _ = rss_kib()
        produce = producer.produce_async
        t0 = time.perf_counter()
        handles = [produce(topic=topic, payload=payload) for _ in range(n)]
        produce_s = time.perf_counter() - t0
        queued = producer.queue_size
        inflight, _ = rss_kib()
        producer.client.flush(300_000)  # sends now, whatever linger.ms says
        for handle in handles:
            handle.wait()
        delivered = sum(1 for h in handles if h.report().error is None)
        del handles
        producer.close()
    else:
        producer = confluent_producer(args.bootstrap, **QUEUED)
        warm_up(None, producer, topic)
        baseline, _ = rss_kib()
        delivered = 0

        def on_delivery(err: Any, msg: Any) -> None:
            nonlocal delivered
            if err is None:
                delivered += 1

        produce = producer.produce
        poll = producer.poll
        t0 = time.perf_counter()
        for _ in range(n):
            produce(topic, payload, on_delivery=on_delivery)
            poll(0)
        produce_s = time.perf_counter() - t0
        queued = len(producer)
        inflight, _ = rss_kib()
        producer.flush(300)
    _, hwm = rss_kib()
    if delivered != n:
        raise RuntimeError(f"{args.client}: {delivered} of {n} delivered")
    return {"client": args.client, "messages": n, "queued": queued,
            "baseline_mib": baseline / 1024, "inflight_mib": inflight / 1024,
            "peak_mib": hwm / 1024, "produce_seconds": produce_s}


def _child_flat(args: argparse.Namespace) -> dict[str, Any]:
    """Produce-and-acknowledge ``units`` x ``unit`` messages; VmRSS after each unit.

    waterdrop: each chunk of 10,000 is 5,000 produce_async + one produce_many_async of 5,000,
    every handle waited (both hot paths in the loop). confluent-kafka: produce() +
    on_delivery + poll(0) per message, flush() per chunk.
    """
    chunk = 10_000
    unit, units, topic = args.unit, args.units, args.topic
    if unit % chunk:
        raise SystemExit(f"--unit must be a multiple of {chunk}")
    samples: list[int] = []
    split: list[tuple[int, int] | None] = []
    failed = 0
    snapshots: list[Any] = []
    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start(8)

    heap: list[int | None] = []

    def sample() -> None:
        samples.append(rss_kib()[0])
        heap.append(malloc_in_use_kib())
        split.append(rss_split_kib())
        if args.tracemalloc and len(samples) in (1, units):
            snapshots.append(tracemalloc.take_snapshot())

    t0 = time.perf_counter()
    if args.client == "waterdrop":
        producer = waterdrop_producer(args.bootstrap)
        warm_up(producer, None, topic)
        produce = producer.produce_async
        produce_many = producer.produce_many_async
        half = chunk // 2
        batch = [{"topic": topic, "payload": PAYLOAD} for _ in range(half)]
        for _ in range(units):
            for _ in range(unit // chunk):
                handles = [produce(topic=topic, payload=PAYLOAD) for _ in range(half)]
                handles += produce_many(batch)
                for handle in handles:
                    if handle.wait(raise_response_error=False).error is not None:
                        failed += 1
                del handles
            sample()
        producer.close()
    else:
        producer = confluent_producer(args.bootstrap)
        warm_up(None, producer, topic)
        errors = 0

        def on_delivery(err: Any, msg: Any) -> None:
            nonlocal errors
            if err is not None:
                errors += 1

        p, poll = producer.produce, producer.poll
        for _ in range(units):
            for _ in range(unit // chunk):
                for _ in range(chunk):
                    p(topic, PAYLOAD, on_delivery=on_delivery)
                    poll(0)
                producer.flush()
            sample()
        failed = errors
    elapsed = time.perf_counter() - t0
    growth: list[str] = []
    if len(snapshots) == 2:
        stats = snapshots[1].compare_to(snapshots[0], "traceback")
        for stat in stats[:10]:
            growth.append(f"{stat.size_diff:+,} B in {stat.count_diff:+,} blocks: "
                          + " <- ".join(f"{f.filename}:{f.lineno}" for f in stat.traceback))
    # the bar's reading: from the sample after the 2nd unit (2,000,000 messages produced) to
    # the last; the change from the 1st unit on is reported beside it
    first = samples[0]
    start = samples[1] if len(samples) > 2 else samples[0]
    end = samples[-1]
    return {"client": args.client, "unit": unit, "units": units, "failed": failed,
            "samples_mib": [round(s / 1024, 2) for s in samples],
            "malloc_in_use_mib": [None if h is None else round(h / 1024, 2) for h in heap],
            "thread_arenas_mib": [None if x is None else round(x[0] / 1024, 2) for x in split],
            "other_rss_mib": [None if x is None else round(x[1] / 1024, 2) for x in split],
            "start_mib": start / 1024, "end_mib": end / 1024, "first_mib": first / 1024,
            "change_pct": (end - start) / start * 100.0,
            "change_pct_from_1st": (end - first) / first * 100.0,
            "max_mib": max(samples) / 1024, "seconds": round(elapsed, 2),
            "msgs_per_s": round(unit * units / elapsed),
            **({"tracemalloc_growth": growth} if args.tracemalloc else {})}


def _child_path(args: argparse.Namespace) -> dict[str, Any]:
    """The per-message path for profilers (perf, callgrind): N produces of one kind.

    ``--linger`` large (default 120,000 ms) keeps the brokers idle: only the enqueue path runs;
    the process then leaves with os._exit before any flush, so nothing after the loop is
    counted. With ``--deliver`` every message is also delivered and waited for (the full path).
    Instructions per message: run with two N and divide the difference (bench/profile.sh).
    """
    n, topic = args.messages, args.topic
    overrides: dict[str, Any] = QUEUED if not args.deliver else {}
    if args.api in ("produce_sync", "produce_flush"):
        overrides = {"linger.ms": 0}
    if args.linger is not None:
        overrides = {**overrides, "linger.ms": args.linger}
    t0 = time.perf_counter()
    if args.client == "waterdrop":
        producer = waterdrop_producer(args.bootstrap, **overrides)
        warm_up(producer, None, topic)
        t0 = time.perf_counter()
        if args.api == "produce_async":
            produce = producer.produce_async
            handles = [produce(topic=topic, payload=PAYLOAD) for _ in range(n)]
        elif args.api == "produce_sync":  # linger.ms 0 (see the sync scenario)
            produce_sync = producer.produce_sync
            handles = [produce_sync(topic=topic, payload=PAYLOAD) for _ in range(n)]
        elif args.api == "produce_many_async":
            batch = [{"topic": topic, "payload": PAYLOAD} for _ in range(args.batch)]
            handles = []
            for start in range(0, n, args.batch):
                handles.extend(producer.produce_many_async(batch[:min(args.batch, n - start)]))
        else:
            raise SystemExit(f"waterdrop has no api {args.api!r} here")
        if args.deliver:
            for handle in handles:
                handle.wait()
    elif args.client == "confluent":
        producer = confluent_producer(args.bootstrap, **overrides)
        warm_up(None, producer, topic)
        count = 0

        def on_delivery(err: Any, msg: Any) -> None:
            nonlocal count
            count += 1

        t0 = time.perf_counter()
        if args.api in ("produce", "produce_async"):
            produce, poll = producer.produce, producer.poll
            for _ in range(n):
                produce(topic, PAYLOAD, on_delivery=on_delivery)
                poll(0)
        elif args.api in ("produce_flush", "produce_sync"):  # linger.ms 0
            produce, flush = producer.produce, producer.flush
            for _ in range(n):
                produce(topic, PAYLOAD, on_delivery=on_delivery)
                flush()
        elif args.api in ("produce_batch", "produce_many_async"):
            template = [{"value": PAYLOAD} for _ in range(args.batch)]
            for start in range(0, n, args.batch):
                size = min(args.batch, n - start)
                producer.produce_batch(topic, template if size == args.batch
                                       else template[:size], on_delivery=on_delivery)
                producer.poll(0)
        else:
            raise SystemExit(f"confluent has no api {args.api!r} here")
        if args.deliver:
            producer.flush()
    else:
        raise SystemExit(f"unknown client {args.client!r}")
    elapsed = time.perf_counter() - t0
    print(json.dumps({"client": args.client, "api": args.api, "messages": n,
                      "deliver": args.deliver, "seconds": elapsed, "msgs_per_s": n / elapsed}),
          flush=True)
    os._exit(0)


def child_main(argv: list[str]) -> int:
    if argv and argv[0] == "host":
        return host_main(argv[1:])
    parser = argparse.ArgumentParser(prog="waterdrop._benchmarks")
    sub = parser.add_subparsers(dest="role", required=True)
    for role in ("inflight", "flat", "path"):
        p = sub.add_parser(role)
        p.add_argument("--client", choices=("waterdrop", "confluent"), required=True)
        p.add_argument("--bootstrap", required=True)
        p.add_argument("--topic", default=TOPIC)
        if role == "inflight":
            p.add_argument("--messages", type=int, default=1_000_000)
        elif role == "flat":
            p.add_argument("--unit", type=int, default=1_000_000)
            p.add_argument("--units", type=int, default=10)
            p.add_argument("--tracemalloc", action="store_true",
                           help="report the Python allocations that grew (slow)")
        else:
            p.add_argument("--messages", type=int, default=100_000)
            p.add_argument("--api", default="produce_async")
            p.add_argument("--batch", type=int, default=10_000)
            p.add_argument("--linger", type=int, default=None)
            p.add_argument("--deliver", action="store_true")
    args = parser.parse_args(argv)
    handler = {"inflight": _child_inflight, "flat": _child_flat, "path": _child_path}[args.role]
    print(json.dumps(handler(args)), flush=True)
    return 0


# ----------------------------------------------------------------------------- the command line


def add_compare_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *,
                          messages_flag: bool = True) -> None:
    """Options shared by bench/compare.py and ``waterdrop bench --compare``."""
    parser.add_argument("--rounds", type=int, help=f"alternating rounds (default "
                        f"{DEFAULTS['rounds']}, --quick {QUICK['rounds']})")
    if messages_flag:
        parser.add_argument("--messages", type=int, help="messages per throughput round "
                            f"(default {DEFAULTS['messages']:,})")
    parser.add_argument("--quick", action="store_true",
                        help="a small run to smoke-test the harness (not a measurement)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--sync-messages", type=int, help="produce_sync calls per round "
                        f"(default {DEFAULTS['sync_messages']:,})")
    parser.add_argument("--inflight", type=int, help="messages in flight for the peak-RSS "
                        f"scenario (default {DEFAULTS['inflight']:,})")
    parser.add_argument("--memory-rounds", type=int, help="subprocess pairs for peak RSS "
                        f"(default {DEFAULTS['memory_rounds']})")
    parser.add_argument("--flat-unit", type=int, help="messages per RSS sample in the "
                        f"flatness loop (default {DEFAULTS['flat_unit']:,}, a multiple of 10,000)")
    parser.add_argument("--flat-units", "--flat-millions", dest="flat_units", type=int,
                        help="samples (units) in the flatness loop; the bar compares the end of "
                        "the 2nd with the end of the last, the change from the 1st is shown too "
                        f"(default {DEFAULTS['flat_units']})")
    parser.add_argument("--broker-warm-up", type=int, metavar="N",
                        help="messages sent to a real broker before its first measured round, "
                        "so that its JIT is warm "
                        f"(default {DEFAULTS['broker_warm_up']:,}; 0: none)")
    parser.add_argument("--c-program", help="bench/c/produce_bench (default: that path under "
                        "the current directory, or $WATERDROP_BENCH_C_PROGRAM)")


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    base = dict(QUICK if args.quick else DEFAULTS)
    for key in ("rounds", "messages", "sync_messages", "inflight", "memory_rounds",
                "flat_unit", "flat_units", "broker_warm_up"):
        value = getattr(args, key, None)
        if value is not None:
            base[key] = value
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(unknown)}; choose from "
                         f"{', '.join(SCENARIOS)}")
    base["scenarios"] = scenarios
    if base["flat_unit"] % 10_000:
        raise SystemExit("--flat-unit must be a multiple of 10,000")
    if base["rounds"] < 1 or base["messages"] < 1:
        raise SystemExit("--rounds and --messages must be >= 1")
    base["c_program"] = find_c_program(getattr(args, "c_program", None))
    return base


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
