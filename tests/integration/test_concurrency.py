"""One producer shared by many threads: every message arrives exactly once."""

from __future__ import annotations

import threading

from tests.helpers import consume, message_count
from waterdrop import DeliveryHandle


def test_threads_sharing_one_producer(kafka_bootstrap, topic, producer):
    threads, per_thread = 8, 1_000
    handles: list[list] = [[] for _ in range(threads)]
    failures: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(n):
        try:
            start.wait()
            for i in range(per_thread):
                dispatch = producer.produce_sync if i % 100 == 0 else producer.produce_async
                handles[n].append(dispatch(topic=topic, payload=f"{n}-{i}", label=(n, i)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert failures == []
    # produce_sync gave reports, produce_async handles
    reports = [x.wait() if isinstance(x, DeliveryHandle) else x for per in handles for x in per]
    total = threads * per_thread
    assert sorted(r.offset for r in reports) == list(range(total))
    assert {r.label for r in reports} == {(n, i) for n in range(threads) for i in range(per_thread)}
    assert message_count(kafka_bootstrap, topic) == total
    values = {m.value() for m in consume(kafka_bootstrap, topic, total)}
    assert values == {f"{n}-{i}".encode() for n in range(threads) for i in range(per_thread)}
