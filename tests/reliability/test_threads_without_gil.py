"""Eight threads racing on one producer, every path of the core at once: produce_async + wait,
produce_many_async, produce_sync, buffer + flush_sync, a variant, listeners subscribed and
unsubscribed, then a burst nobody waits for, purge() and close() racing the last deliveries.

Every message is accounted for exactly once: each handle resolves once (counted with
add_done_callback), is either delivered (a distinct partition/offset) or reported with an error
(purged at the end), and no handle is left pending or referenced by librdkafka.

Runs on any build; it is the free-threading check on a free-threaded CPython (3.13t+), where
importing waterdrop leaves the GIL off (run with PYTHON_GIL=0 to make sure of it).
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from typing import Any

import pytest

from tests.helpers import close_within, unique_topic
from tests.reliability.report import record
from tests.reliability.sizes import sized
from waterdrop import Producer
from waterdrop.testing import MockCluster

pytestmark = pytest.mark.timeout(sized(240, 1_800))

THREADS = 8
ROUNDS = sized(60, 1_000)      # per thread; each round sends 1 + 1 + BATCH + 2 + 1 messages
BATCH = 20
BURST = sized(2_000, 20_000)   # produced without waiting right before purge() and close()
JOIN_DEADLINE_S = 180.0


class Ledger:
    """Every message sent (by label) and every resolution seen (by label)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent: list[tuple[str, Any]] = []
        self.resolved: Counter[str] = Counter()
        self.handles: dict[str, Any] = {}

    def track(self, label: str, handle: Any) -> None:
        with self.lock:
            self.sent.append((label, handle))
            self.handles[label] = handle

        def done(resolved: Any) -> None:
            assert resolved is handle
            with self.lock:
                self.resolved[label] += 1

        handle.add_done_callback(done)


def _gil_state() -> str:
    enabled = getattr(sys, "_is_gil_enabled", lambda: True)()
    return "with the GIL" if enabled else "without the GIL"


def test_eight_threads_on_one_producer_account_for_every_message() -> None:
    ledger = Ledger()
    acknowledged = Counter()
    ack_lock = threading.Lock()
    failures: list[BaseException] = []

    with MockCluster(brokers=1) as cluster:
        topic = unique_topic("wd-ft")
        cluster.create_topic(topic, partitions=3)
        producer = Producer(
            kafka={"bootstrap.servers": cluster.bootstrap_servers, "linger.ms": 1},
            max_wait_timeout=60_000,
        )
        variant = producer.variant(topic_config={"acks": 1})
        start = threading.Barrier(THREADS)

        def on_ack(event: Any) -> None:
            with ack_lock:
                acknowledged[threading.get_ident()] += 1

        def work(n: int) -> None:
            try:
                start.wait()
                for r in range(ROUNDS):
                    base = f"t{n}-r{r}"
                    handle = producer.produce_async(topic=topic, payload=b"a" * 64,
                                                    label=f"{base}-async")
                    ledger.track(f"{base}-async", handle)
                    assert handle.wait().error is None

                    report = producer.produce_sync(topic=topic, payload=b"s",
                                                   label=f"{base}-sync")
                    ledger.track(f"{base}-sync", report)
                    assert report.error is None and report.offset >= 0

                    handles = producer.produce_many_async([
                        {"topic": topic, "payload": b"m" * (i + 1), "label": f"{base}-many{i}"}
                        for i in range(BATCH)
                    ])
                    for i, h in enumerate(handles):
                        ledger.track(f"{base}-many{i}", h)
                    for h in handles:
                        h.wait()

                    # the buffer is shared: a flush may send another thread's messages, so
                    # each buffered message is tracked by the thread whose flush sent it
                    producer.buffer(topic=topic, payload=b"b", label=f"{base}-buf0")
                    producer.buffer(topic=topic, payload=b"b", label=f"{base}-buf1")
                    for h in producer.flush_sync():
                        ledger.track(h.label, h)

                    h = variant.produce_async(topic=topic, payload=b"v", key=base,
                                              label=f"{base}-variant")
                    ledger.track(f"{base}-variant", h)
                    h.wait()   # only the burst below is left for purge()

                    if n == 0 and r % 3 == 0:
                        producer.monitor.subscribe("message.acknowledged", on_ack)
                    elif n == 0:
                        producer.monitor.unsubscribe(on_ack)
                    elif n == 1 and r % 5 == 0:
                        listener = _Listener()
                        producer.monitor.subscribe(listener)
                        producer.monitor.unsubscribe(listener)
                # the end: a burst nobody waits for, then purge() and close() race it
                for i in range(BURST // THREADS):
                    label = f"t{n}-burst{i}"
                    ledger.track(label, producer.produce_async(topic=topic, payload=b"x",
                                                               label=label))
            except BaseException as error:  # noqa: BLE001 - reported below
                failures.append(error)

        threads = [threading.Thread(target=work, args=(n,), name=f"ft-{n}")
                   for n in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(JOIN_DEADLINE_S)
        assert not [t.name for t in threads if t.is_alive()], "a thread never finished"
        assert not failures, failures[:3]

        # everything still queued fails with purge_*; what already left is delivered
        producer.purge()
        client = producer.client
        close_within(producer)
        assert client.handles_in_flight == 0

    assert producer.messages == ()
    sent = len(ledger.sent)
    labels = [label for label, _ in ledger.sent]
    assert len(set(labels)) == sent, "a message was tracked twice"
    expected = THREADS * ROUNDS * (1 + 1 + BATCH + 2 + 1) + THREADS * (BURST // THREADS)
    assert sent == expected
    # every handle resolved exactly once
    assert not [h for _, h in ledger.sent if h.pending]
    counts = Counter(ledger.resolved.values())
    assert set(counts) == {1}, f"resolutions per handle: {dict(counts)}"
    assert len(ledger.resolved) == sent
    # delivered or reported, and a delivered one has an offset of its own
    delivered = [(h.partition, h.offset) for _, h in ledger.sent if h.error is None]
    failed = [h.error.code for _, h in ledger.sent if h.error is not None]
    assert all(offset >= 0 for _, offset in delivered)
    assert len(set(delivered)) == len(delivered), "two messages at one offset"
    assert set(failed) <= {"purge_queue", "purge_inflight"}, Counter(failed)
    assert len(delivered) + len(failed) == sent
    # only the burst may have been purged
    purged = {label for label, h in ledger.sent if h.error is not None}
    assert all("-burst" in label for label in purged)
    record("threads_without_gil", {
        "interpreter": sys.version.split()[0] + ("t" if _free_threaded() else ""),
        "gil": _gil_state(),
        "threads": THREADS,
        "sent": sent,
        "delivered": len(delivered),
        "purged": len(failed),
    })


class _Listener:
    def on_message_acknowledged(self, event: Any) -> None:
        pass

    def on_error_occurred(self, event: Any) -> None:
        pass


def _free_threaded() -> bool:
    import sysconfig

    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
