"""The delivery-report poller and a waiting thread that serves the queue itself.

produce_sync waits for its report by serving librdkafka's queue on the calling thread (the
poller parks meanwhile), and spins on the queue before blocking while recent deliveries were
fast. Whichever thread serves: every message is resolved exactly once, callbacks and
listeners run, errors reach the caller, and nothing is left in flight.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from tests.helpers import consume, unique_topic
from waterdrop import KafkaError, ProduceError, Producer

pytestmark = pytest.mark.timeout(180)


def make(cluster, **kafka):
    return Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers, "linger.ms": 0,
                           **kafka}, max_wait_timeout=60_000)


def run_threads(count, target):
    """Run ``target(i)`` on ``count`` threads released together; re-raise the first error."""
    errors = []
    start = threading.Barrier(count)

    def body(i):
        try:
            start.wait()
            target(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads), "a produce_sync never returned"
    if errors:
        raise errors[0]


def test_produce_sync_from_many_threads_at_once(cluster):
    # one thread at a time serves the queue; the others' reports reach them through it
    topic = unique_topic()
    cluster.create_topic(topic, partitions=3)
    producer = make(cluster)
    acknowledged = Counter()
    producer.monitor.subscribe(
        "message.acknowledged",
        lambda event: acknowledged.update([(event["partition"], event["offset"])]))
    reports = {}
    try:
        def send(i):
            for j in range(60):
                reports[i, j] = producer.produce_sync(topic=topic, payload=b"%d-%d" % (i, j))

        run_threads(8, send)
        assert producer.client.handles_in_flight == 0
    finally:
        producer.close()
    assert len(reports) == 480
    assert all(report.error is None and report.offset >= 0 for report in reports.values())
    places = {(report.partition, report.offset): key for key, report in reports.items()}
    assert len(places) == 480                  # no two reports name the same record
    assert acknowledged == Counter(list(places))   # one acknowledgement per message
    stored = {(m.partition(), m.offset()): m.value()
              for m in consume(cluster.bootstrap_servers, topic, 480)}
    assert stored == {place: b"%d-%d" % key for place, key in places.items()}


def test_produce_sync_while_the_poller_serves_async_deliveries(cluster):
    # async handles with callbacks are resolved by whichever thread serves the queue at the
    # time: each callback runs once, and the sync callers get their own reports
    topic = unique_topic()
    cluster.create_topic(topic, partitions=2)
    producer = make(cluster, **{"linger.ms": 1})
    called = Counter()
    lock = threading.Lock()
    handles = []
    sync_reports = []

    def callback(handle):
        with lock:
            called[id(handle)] += 1

    def work(i):
        for j in range(150):
            if i < 2:
                handle = producer.produce_async(topic=topic, payload=b"a%d-%d" % (i, j))
                handle.add_done_callback(callback)
                handles.append(handle)
            else:
                sync_reports.append(producer.produce_sync(topic=topic, payload=b"s%d-%d" % (i, j)))

    try:
        run_threads(5, work)
        for handle in handles:
            assert handle.wait().error is None
        producer.client.flush(30_000)
        assert producer.client.handles_in_flight == 0
    finally:
        producer.close()
    assert len(handles) == 300 and len(sync_reports) == 450
    assert called == Counter({id(handle): 1 for handle in handles})
    assert all(report.error is None and report.offset >= 0 for report in sync_reports)
    places = {(h.partition, h.offset) for h in handles} | {
        (r.partition, r.offset) for r in sync_reports}
    assert len(places) == 750


def test_a_delivery_error_reaches_the_produce_sync_caller(cluster):
    topic = unique_topic()
    cluster.create_topic(topic, partitions=1)
    producer = make(cluster, **{"message.send.max.retries": 0})
    errors = []
    producer.monitor.subscribe("error.occurred", lambda event: errors.append(event["type"]))
    try:
        for _ in range(20):                  # fast deliveries first: the waiter spins
            assert producer.produce_sync(topic=topic, payload=b"ok").error is None
        cluster.push_request_errors(0, ["msg_size_too_large"])  # not retriable
        with pytest.raises(ProduceError) as info:
            producer.produce_sync(topic=topic, payload=b"rejected")
        assert isinstance(info.value.__cause__, KafkaError)
        assert info.value.__cause__.code == "msg_size_too_large"
        report = producer.produce_sync(topic=topic, payload=b"after")
        assert report.error is None and report.offset == 20
        assert producer.client.handles_in_flight == 0
    finally:
        producer.close()
    # the delivery's error event once, and produce_sync's own once
    assert sorted(errors) == ["librdkafka.dispatch_error", "message.produce_sync"]


def test_produce_sync_as_deliveries_slow_down_and_speed_up_again(cluster):
    # fast round trips (the waiter spins), slow ones (it blocks at once), fast ones again:
    # every report is right whichever way its waiter waited
    topic = unique_topic()
    cluster.create_topic(topic, partitions=1)
    producer = make(cluster)
    offsets = []
    try:
        for rtt_ms, count in ((0, 30), (50, 10), (0, 30)):
            cluster.set_rtt(-1, rtt_ms)
            for _ in range(count):
                report = producer.produce_sync(topic=topic, payload=b"%d" % len(offsets))
                assert report.error is None
                offsets.append(report.offset)
        assert producer.client.handles_in_flight == 0
    finally:
        cluster.set_rtt(-1, 0)
        producer.close()
    assert offsets == list(range(70))
    stored = [m.value() for m in consume(cluster.bootstrap_servers, topic, 70)]
    assert stored == [b"%d" % i for i in range(70)]


def test_events_keep_flowing_to_the_poller_between_produce_sync_calls(cluster):
    # a waiter serving the queue leaves non-delivery events (here: statistics) to the poller
    topic = unique_topic()
    cluster.create_topic(topic, partitions=1)
    producer = make(cluster, **{"statistics.interval.ms": 100})
    seen = threading.Event()
    producer.monitor.subscribe("statistics.emitted", lambda event: seen.set())
    try:
        for _ in range(2_000):
            producer.produce_sync(topic=topic, payload=b"x")
            if seen.is_set():
                break
        assert seen.wait(30)
    finally:
        producer.close()


def test_produce_sync_times_out_while_the_report_is_on_its_way(cluster):
    # the wait gives up at max_wait_timeout; the message stays in flight and resolves later
    from waterdrop import WaitTimeoutError

    topic = unique_topic()
    cluster.create_topic(topic, partitions=1)
    producer = Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers, "linger.ms": 0},
                        max_wait_timeout=300)
    try:
        for _ in range(20):                  # fast round trips first: the waiter spins
            producer.produce_sync(topic=topic, payload=b"fast")
        cluster.set_rtt(-1, 2_000)
        with pytest.raises(ProduceError) as info:
            producer.produce_sync(topic=topic, payload=b"slow")
        assert isinstance(info.value.__cause__, WaitTimeoutError)
        assert producer.client.handles_in_flight == 1      # still on its way
        cluster.set_rtt(-1, 0)
        producer.client.flush(30_000)
        assert producer.client.handles_in_flight == 0      # ... and resolved once
    finally:
        cluster.set_rtt(-1, 0)
        producer.close()
    assert [m.value() for m in consume(cluster.bootstrap_servers, topic, 21)][-1] == b"slow"
