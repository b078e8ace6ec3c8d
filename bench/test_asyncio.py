"""asyncio: waterdrop.aio beside aiokafka and confluent-kafka's AIOProducer, same run, same
cluster, same librdkafka-equivalent settings (linger, acks=all).

    pytest bench/test_asyncio.py -p no:cacheprovider -s          # MockCluster + real broker
    python bench/test_asyncio.py [mock|broker|all]                # the same, as a script

Measured:

- latency of one awaited produce (p50 / p99 over sequential sends), linger.ms 0 and 5:
  waterdrop's blocking ``produce_sync`` (the reference), ``await aio_producer.produce_sync``,
  ``await producer.produce_async(...)`` (await the handle) with the per-batch loop wake-up and
  with the former per-handle one, on asyncio's loop and on uvloop; aiokafka's
  ``send_and_wait``; confluent-kafka's ``AIOProducer`` (``await (await produce())``, its
  default batching: ``batch_size=1000``, ``buffer_timeout=1 s``, fewer samples);
- throughput of 100,000 concurrent awaited produces, linger.ms 5: (A) one asyncio task per
  message, each awaiting its delivery (``asyncio.gather``), beside the floor of asyncio itself
  (100,000 tasks that each suspend once on a future, no Kafka); (B) one task with 100,000
  produces in flight, awaiting each delivery in turn. aiokafka gets ``max_batch_size`` equal to
  librdkafka's ``batch.size`` default (1 MB); one more row shows it with its own 16 KB default.
  Each throughput figure is the best of ``ROUNDS`` rounds (other work on a shared machine only
  ever slows a round down).

Speed is reported, never asserted.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

PAYLOAD = b"x" * 100
MESSAGES = 100_000
LATENCY_SAMPLES = 400
CONFLUENT_LATENCY_SAMPLES = 6
ROUNDS = 3  # throughput: the best of this many rounds
RESULTS: dict[str, dict[str, Any]] = {}


# ----------------------------------------------------------------------------------------------
# the former await (one call_soon_threadsafe per handle), for the comparison
# ----------------------------------------------------------------------------------------------


def _per_handle_await(handle: Any) -> asyncio.Future[Any]:
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    if not handle.pending:
        future.set_result(handle)
        return future

    def settle(f: asyncio.Future[Any], h: Any) -> None:
        if not f.done():
            f.set_exception(h.error) if h.error is not None else f.set_result(h)

    def done(h: Any) -> None:
        try:
            loop.call_soon_threadsafe(settle, future, h)
        except RuntimeError:
            pass

    handle.add_done_callback(done)
    return future


class _await_strategy:
    def __init__(self, per_handle: bool) -> None:
        self.per_handle = per_handle

    def __enter__(self) -> None:
        from waterdrop import _aio

        self.saved = _aio.await_handle
        if self.per_handle:
            _aio.await_handle = _per_handle_await

    def __exit__(self, *exc: Any) -> None:
        from waterdrop import _aio

        _aio.await_handle = self.saved


# ----------------------------------------------------------------------------------------------
# measurements
# ----------------------------------------------------------------------------------------------


def _pct(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return {"p50_ms": statistics.median(ordered) * 1000, "p99_ms": p99 * 1000,
            "n": len(ordered)}


def _run(coro_fn: Callable[[], Any], loop: str = "asyncio") -> Any:
    gc.collect()
    if loop == "uvloop":
        import uvloop

        return uvloop.run(coro_fn())
    return asyncio.run(coro_fn())


def waterdrop_sync_latency(bootstrap: str, topic: str, linger: int) -> dict[str, float]:
    from waterdrop import Producer

    with Producer(kafka={"bootstrap.servers": bootstrap, "linger.ms": linger, "acks": "all"}) as p:
        p.produce_sync(topic=topic, payload=PAYLOAD)
        samples = []
        for _ in range(LATENCY_SAMPLES):
            start = time.perf_counter()
            p.produce_sync(topic=topic, payload=PAYLOAD)
            samples.append(time.perf_counter() - start)
    return _pct(samples)


def waterdrop_aio_latency(bootstrap: str, topic: str, linger: int, how: str,
                          loop: str = "asyncio", per_handle: bool = False) -> dict[str, float]:
    from waterdrop import aio

    async def main() -> list[float]:
        conf = {"bootstrap.servers": bootstrap, "linger.ms": linger, "acks": "all"}
        async with aio.Producer(kafka=conf) as p:
            await p.produce_sync(topic=topic, payload=PAYLOAD)
            samples = []
            for _ in range(LATENCY_SAMPLES):
                start = time.perf_counter()
                if how == "produce_sync":
                    await p.produce_sync(topic=topic, payload=PAYLOAD)
                else:
                    await p.produce_async(topic=topic, payload=PAYLOAD)
                samples.append(time.perf_counter() - start)
            return samples

    with _await_strategy(per_handle):
        return _pct(_run(main, loop))


def aiokafka_latency(bootstrap: str, topic: str, linger: int) -> dict[str, float]:
    from aiokafka import AIOKafkaProducer

    async def main() -> list[float]:
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=linger, acks="all",
                             max_batch_size=1_000_000)
        await p.start()
        try:
            await p.send_and_wait(topic, PAYLOAD)
            samples = []
            for _ in range(LATENCY_SAMPLES):
                start = time.perf_counter()
                await p.send_and_wait(topic, PAYLOAD)
                samples.append(time.perf_counter() - start)
            return samples
        finally:
            await p.stop()

    return _pct(_run(main))


def confluent_aio_latency(bootstrap: str, topic: str, linger: int) -> dict[str, float] | None:
    try:
        from confluent_kafka.aio import AIOProducer
    except ImportError:
        return None

    async def main() -> list[float]:
        p = AIOProducer({"bootstrap.servers": bootstrap, "linger.ms": linger, "acks": "all"})
        try:
            await (await p.produce(topic, PAYLOAD))
            samples = []
            for _ in range(CONFLUENT_LATENCY_SAMPLES):
                start = time.perf_counter()
                await (await p.produce(topic, PAYLOAD))
                samples.append(time.perf_counter() - start)
            return samples
        finally:
            await p.close()

    return _pct(_run(main))


def _rate(seconds: float) -> dict[str, float]:
    return {"msgs_per_s": MESSAGES / seconds, "seconds": seconds}


def asyncio_floor(loop: str = "asyncio") -> dict[str, float]:
    async def main() -> float:
        running = asyncio.get_running_loop()
        futures: list[asyncio.Future[Any]] = []

        async def one() -> Any:
            future = running.create_future()
            futures.append(future)
            return await future

        def resolve() -> None:
            for future in futures:
                future.set_result(None)

        start = time.perf_counter()
        gathered = asyncio.gather(*(one() for _ in range(MESSAGES)))
        running.call_soon(resolve)
        await gathered
        return time.perf_counter() - start

    return _rate(_run(main, loop))


def waterdrop_throughput(bootstrap: str, topic: str, shape: str, loop: str = "asyncio",
                         per_handle: bool = False) -> dict[str, float]:
    from waterdrop import aio

    async def main() -> float:
        conf = {"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all",
                "queue.buffering.max.messages": 2_000_000}
        async with aio.Producer(kafka=conf) as p:
            await p.produce_sync(topic=topic, payload=PAYLOAD)
            produce = p.produce_async
            start = time.perf_counter()
            if shape == "tasks":
                async def one() -> Any:
                    return await produce(topic=topic, payload=PAYLOAD)

                await asyncio.gather(*(one() for _ in range(MESSAGES)))
            else:
                handles = [produce(topic=topic, payload=PAYLOAD) for _ in range(MESSAGES)]
                for handle in handles:
                    await handle
            return time.perf_counter() - start

    with _await_strategy(per_handle):
        return _rate(_run(main, loop))


def aiokafka_throughput(bootstrap: str, topic: str, shape: str, max_batch_size: int = 1_000_000,
                        messages: int = MESSAGES) -> dict[str, float]:
    """aiokafka with ``max_batch_size`` = librdkafka's ``batch.size`` default (1,000,000 B);
    its own default is 16 KB."""
    from aiokafka import AIOKafkaProducer

    async def main() -> float:
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all",
                             max_batch_size=max_batch_size)
        await p.start()
        try:
            await p.send_and_wait(topic, PAYLOAD)
            start = time.perf_counter()
            if shape == "tasks":
                await asyncio.gather(*(p.send_and_wait(topic, PAYLOAD) for _ in range(messages)))
            else:
                futures = [await p.send(topic, PAYLOAD) for _ in range(messages)]
                for future in futures:
                    await future
            return time.perf_counter() - start
        finally:
            await p.stop()

    seconds = _run(main)
    return {"msgs_per_s": messages / seconds, "seconds": seconds}


def confluent_aio_throughput(bootstrap: str, topic: str, shape: str) -> dict[str, float] | None:
    try:
        from confluent_kafka.aio import AIOProducer
    except ImportError:
        return None

    async def main() -> float:
        p = AIOProducer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all",
                         "queue.buffering.max.messages": 2_000_000})
        try:
            await (await p.produce(topic, PAYLOAD))
            start = time.perf_counter()
            if shape == "tasks":
                async def one() -> Any:
                    return await (await p.produce(topic, PAYLOAD))

                await asyncio.gather(*(one() for _ in range(MESSAGES)))
            else:
                futures = [await p.produce(topic, PAYLOAD) for _ in range(MESSAGES)]
                for future in futures:
                    await future
            return time.perf_counter() - start
        finally:
            await p.close()

    return _rate(_run(main))


# ----------------------------------------------------------------------------------------------
# one full run per target
# ----------------------------------------------------------------------------------------------


def run_latency(bootstrap: str, topic: str, out: dict[str, Any]) -> None:
    for linger in (0, 5):
        row = out.setdefault(f"latency linger.ms={linger}", {})
        row["waterdrop produce_sync (blocking, reference)"] = waterdrop_sync_latency(
            bootstrap, topic, linger)
        row["waterdrop.aio await produce_sync"] = waterdrop_aio_latency(
            bootstrap, topic, linger, "produce_sync")
        row["waterdrop await produce_async (per-batch wake-up)"] = waterdrop_aio_latency(
            bootstrap, topic, linger, "produce_async")
        row["waterdrop await produce_async (per-handle wake-up)"] = waterdrop_aio_latency(
            bootstrap, topic, linger, "produce_async", per_handle=True)
        row["waterdrop await produce_async, uvloop"] = waterdrop_aio_latency(
            bootstrap, topic, linger, "produce_async", loop="uvloop")
        row["aiokafka send_and_wait"] = aiokafka_latency(bootstrap, topic, linger)
        confluent = confluent_aio_latency(bootstrap, topic, linger)
        row["confluent-kafka AIOProducer (defaults)"] = confluent or "not installed"


def _best(measure: Callable[[], Any]) -> Any:
    """The best of ROUNDS rounds: on a shared machine interference only ever slows a round."""
    rounds = [measure() for _ in range(ROUNDS)]
    if any(not isinstance(r, dict) for r in rounds):
        return rounds[0]
    return max(rounds, key=lambda r: r["msgs_per_s"])


def run_throughput(bootstrap: str, topic: str, out: dict[str, Any]) -> None:
    row = out.setdefault("throughput A: 100,000 tasks, each awaits one produce", {})
    row["asyncio floor (100,000 tasks suspending once, no Kafka)"] = _best(asyncio_floor)
    row["waterdrop (per-batch wake-up)"] = _best(
        lambda: waterdrop_throughput(bootstrap, topic, "tasks"))
    row["waterdrop (per-handle wake-up)"] = _best(
        lambda: waterdrop_throughput(bootstrap, topic, "tasks", per_handle=True))
    row["uvloop floor"] = _best(lambda: asyncio_floor("uvloop"))
    row["waterdrop, uvloop"] = _best(
        lambda: waterdrop_throughput(bootstrap, topic, "tasks", loop="uvloop"))
    row["aiokafka"] = _best(lambda: aiokafka_throughput(bootstrap, topic, "tasks"))
    row["aiokafka, its default max_batch_size (16 KB), 10,000 messages"] = aiokafka_throughput(
        bootstrap, topic, "tasks", max_batch_size=16_384, messages=10_000)
    row["confluent-kafka AIOProducer"] = (
        _best(lambda: confluent_aio_throughput(bootstrap, topic, "tasks")) or "not installed")
    row = out.setdefault("throughput B: one task, 100,000 in flight, each awaited", {})
    row["waterdrop (per-batch wake-up)"] = _best(
        lambda: waterdrop_throughput(bootstrap, topic, "inflight"))
    row["waterdrop (per-handle wake-up)"] = _best(
        lambda: waterdrop_throughput(bootstrap, topic, "inflight", per_handle=True))
    row["waterdrop, uvloop"] = _best(
        lambda: waterdrop_throughput(bootstrap, topic, "inflight", loop="uvloop"))
    row["aiokafka"] = _best(lambda: aiokafka_throughput(bootstrap, topic, "inflight"))
    row["confluent-kafka AIOProducer"] = (
        _best(lambda: confluent_aio_throughput(bootstrap, topic, "inflight")) or "not installed")


def format_results(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for target, sections in results.items():
        lines.append(f"## {target}")
        for section, rows in sections.items():
            lines.append(f"### {section}")
            if section.startswith("latency"):
                ref = rows.get("waterdrop produce_sync (blocking, reference)", {}).get("p50_ms")
                lines.append("| client | p50 ms | p99 ms | p50 - produce_sync p50 | samples |")
                lines.append("|---|---:|---:|---:|---:|")
                for name, r in rows.items():
                    if isinstance(r, str):
                        lines.append(f"| {name} | {r} | | | |")
                        continue
                    delta = f"{r['p50_ms'] - ref:+.3f} ms" if ref is not None else ""
                    lines.append(f"| {name} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {delta} "
                                 f"| {r['n']} |")
            else:
                base = rows.get("aiokafka", {})
                base_rate = base.get("msgs_per_s") if isinstance(base, dict) else None
                lines.append("| client | messages/s | seconds | vs aiokafka |")
                lines.append("|---|---:|---:|---:|")
                for name, r in rows.items():
                    if isinstance(r, str):
                        lines.append(f"| {name} | {r} | | |")
                        continue
                    ratio = f"{r['msgs_per_s'] / base_rate:.1f}x" if base_rate else ""
                    lines.append(f"| {name} | {r['msgs_per_s']:,.0f} | {r['seconds']:.2f} "
                                 f"| {ratio} |")
            lines.append("")
    return lines


# ----------------------------------------------------------------------------------------------
# targets
# ----------------------------------------------------------------------------------------------


def _broker() -> str | None:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=2).close()
    except OSError:
        return None
    return bootstrap


def _broker_topic(bootstrap: str) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    name = f"wd-bench-aio-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])[name].result(30)
    for _ in range(300):  # until every partition has a leader (bounded)
        meta = admin.list_topics(topic=name, timeout=10).topics.get(name)
        if meta and meta.error is None and all(p.leader >= 0 for p in meta.partitions.values()):
            break
        time.sleep(0.1)
    return name


def run_mock() -> dict[str, Any]:
    from waterdrop.testing import MockCluster

    out: dict[str, Any] = {}
    with MockCluster(brokers=3) as mc:
        mc.create_topic("bench-aio", partitions=3, replication_factor=3)
        run_latency(mc.bootstrap_servers, "bench-aio", out)
        run_throughput(mc.bootstrap_servers, "bench-aio", out)
    return out


def run_broker(bootstrap: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    topic = _broker_topic(bootstrap)
    run_latency(bootstrap, topic, out)
    run_throughput(bootstrap, topic, out)
    return out


@pytest.fixture(scope="module", autouse=True)
def _summary(request):
    yield
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    if reporter is not None and RESULTS:
        for line in [""] + format_results(RESULTS):
            reporter.write_line(line)


def test_asyncio_mock_cluster():
    pytest.importorskip("aiokafka")
    RESULTS["MockCluster (3 brokers, 3 partitions, RF 3)"] = run_mock()


def test_asyncio_real_broker():
    pytest.importorskip("aiokafka")
    bootstrap = _broker()
    if bootstrap is None:
        pytest.skip("no broker at KAFKA_BOOTSTRAP_SERVERS / 127.0.0.1:9092")
    RESULTS[f"Real broker ({bootstrap}, 1 broker, 3 partitions)"] = run_broker(bootstrap)


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    if which in ("mock", "all"):
        RESULTS["MockCluster (3 brokers, 3 partitions, RF 3)"] = run_mock()
    if which in ("broker", "all"):
        broker = _broker()
        if broker is not None:
            RESULTS[f"Real broker ({broker}, 1 broker, 3 partitions)"] = run_broker(broker)
    print("\n".join(format_results(RESULTS)))
