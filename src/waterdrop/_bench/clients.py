"""The two clients under test and their timed loops: how each is built from the shared
settings, warmed up, and driven for one measured round (produce_async, produce_many_async,
produce_sync against confluent-kafka's produce() with poll/flush, and produce_batch).

waterdrop and confluent_kafka are imported inside the functions: a child process that runs
one client never loads the other.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .settings import COMMON, PAYLOAD


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


def _latencies_ms(n: int, send: Callable[[], object]) -> list[float]:
    """Call ``send`` n times in a row; the milliseconds each call took."""
    clock = time.perf_counter_ns
    out = []
    for _ in range(n):
        t0 = clock()
        send()
        out.append((clock() - t0) / 1e6)
    return out


def run_wd_sync(producer: Any, topic: str, n: int) -> list[float]:
    """produce_sync n times in a row; each one's latency, ms."""
    produce_sync = producer.produce_sync
    payload = PAYLOAD

    def send() -> None:
        produce_sync(topic=topic, payload=payload)

    return _latencies_ms(n, send)


def run_ck_sync(producer: Any, topic: str, n: int) -> list[float]:
    """confluent-kafka: produce() + flush() n times in a row; each one's latency, ms."""
    errors: list[Any] = []

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(err)

    produce = producer.produce
    flush = producer.flush
    payload = PAYLOAD

    def send() -> None:
        produce(topic, payload, on_delivery=on_delivery)
        flush()

    out = _latencies_ms(n, send)
    if errors:
        raise RuntimeError(f"confluent-kafka sync: {len(errors)} failed: {errors[0]}")
    return out
