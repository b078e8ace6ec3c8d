"""Fault injection on librdkafka's mock cluster (waterdrop.testing.MockCluster).

Each case produces numbered, labelled messages through the fault and then reconciles
(tests/reliability/reconcile.py) what the producer reported against what confluent-kafka
reads back: acknowledged means present exactly once where the report says; absent means
reported failed, with the label, on the handle (and in ``error.occurred``); nothing twice;
order kept per partition. No case waits on a clock: each waits on handles or conditions
with generous deadlines, so a hang fails instead of blocking the run.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from tests.helpers import close_within
from tests.reliability.kafka_cluster import read_all, wait_for
from tests.reliability.reconcile import reconcile, resolve_all
from tests.reliability.sizes import sized
from waterdrop import KafkaError, ProduceError, Producer
from waterdrop.errors import ProduceManyError
from waterdrop.testing import MockCluster

PRODUCE = 0   # Kafka API key of Produce requests
COUNT = sized(2_000, 50_000)
PARTITIONS = 3

pytestmark = pytest.mark.timeout(sized(240, 1_800))


@pytest.fixture
def cluster():
    with MockCluster(brokers=3) as mc:
        yield mc
        for broker in range(1, 4):
            mc.broker_up(broker)
            mc.set_rtt(broker, 0)


@pytest.fixture
def make_producer(cluster):
    made: list[Producer] = []

    def make(kafka: dict[str, Any] | None = None, **settings: Any) -> Producer:
        conf = {"bootstrap.servers": cluster.bootstrap_servers, "linger.ms": 2}
        conf.update(kafka or {})
        settings.setdefault("max_wait_timeout", 120_000)
        producer = Producer(kafka=conf, **settings)
        made.append(producer)
        return producer

    yield make
    for producer in made:
        close_within(producer, force=True, deadline_s=60)


class Events:
    """error.occurred / message.acknowledged as seen by a subscriber (thread-safe)."""

    def __init__(self, producer: Producer) -> None:
        self.lock = threading.Lock()
        self.acknowledged: list[Any] = []
        self.errors: list[dict[str, Any]] = []
        producer.monitor.subscribe("message.acknowledged", self._ack)
        producer.monitor.subscribe("error.occurred", self._error)

    def _ack(self, event: Any) -> None:
        with self.lock:
            self.acknowledged.append(event["label"])

    def _error(self, event: Any) -> None:
        with self.lock:
            self.errors.append(dict(event.payload))

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.errors if e["type"] == kind]


def topic_on(cluster: MockCluster, name: str, partitions: int = PARTITIONS) -> str:
    cluster.create_topic(name, partitions=partitions, replication_factor=3)
    return name


def warm_up(producer: Producer, cluster: MockCluster) -> None:
    """Connect and learn metadata on a topic of its own (kept out of the reconciliation)."""
    cluster.create_topic("warm-up", partitions=1, replication_factor=3)
    producer.produce_sync(topic="warm-up", payload=b"w")


def numbered(topic: str, start: int, stop: int) -> list[dict[str, Any]]:
    return [
        {"topic": topic, "payload": b"%d" % i, "partition": i % PARTITIONS, "label": i}
        for i in range(start, stop)
    ]


def produce_numbered(producer: Producer, topic: str, start: int, stop: int) -> list[Any]:
    return [producer.produce_async(m) for m in numbered(topic, start, stop)]


# --- request errors on Produce ----------------------------------------------------------------

# What librdkafka 2.14 retries on a Produce response (checked one by one on the mock cluster)
RETRIABLE = [
    "not_leader_for_partition",
    "leader_not_available",
    "not_enough_replicas",
    "not_enough_replicas_after_append",
    "request_timed_out",
    "kafka_storage_error",
    "unknown_topic_or_part",
    "invalid_msg",
]

# ... and what it reports on the message at once. (topic_authorization_failed also marks the
# topic as failed until the next metadata refresh: see its own test.)
NON_RETRIABLE = [
    "msg_size_too_large",
    "network_exception",
    "invalid_required_acks",
    "record_list_too_large",
    "invalid_record",
    "invalid_timestamp",
    "policy_violation",
    "cluster_authorization_failed",
]


@pytest.mark.parametrize("idempotent", [False, True], ids=["plain", "idempotent"])
def test_retriable_produce_errors_are_retried_and_every_message_delivered_once(
    cluster, make_producer, idempotent
):
    topic = topic_on(cluster, f"retriable-{idempotent}")
    producer = make_producer({
        "enable.idempotence": idempotent,
        "retry.backoff.ms": 5,
        "retry.backoff.max.ms": 20,
    })
    events = Events(producer)
    warm_up(producer, cluster)
    handles: list[Any] = []
    chunk = COUNT // 10
    for step in range(10):
        # a burst of retriable failures in front of every chunk's Produce requests
        cluster.push_request_errors(PRODUCE, RETRIABLE)
        handles += produce_numbered(producer, topic, step * chunk, (step + 1) * chunk)
    outcome = reconcile(cluster.bootstrap_servers, topic, handles, allow_failed_present=False)
    print(f"\n[retriable idempotent={idempotent}] {outcome}")
    assert len(outcome.succeeded) == COUNT and not outcome.failed
    labels = sorted(label for label in events.acknowledged if label is not None)
    assert labels == list(range(COUNT))
    assert not events.of_type("librdkafka.dispatch_error")


def test_non_retriable_produce_errors_reach_the_handles_with_their_labels(
    cluster, make_producer
):
    topic = topic_on(cluster, "non-retriable")
    producer = make_producer({"retry.backoff.ms": 5})
    events = Events(producer)
    warm_up(producer, cluster)
    handles: list[Any] = []
    expected: dict[int, str] = {}
    chunk = COUNT // len(NON_RETRIABLE)
    n = 0
    for code in NON_RETRIABLE:
        # one message alone in its request meets the error...
        cluster.push_request_errors(PRODUCE, [code])
        [message] = numbered(topic, n, n + 1)
        handles.append(producer.produce_async(message))
        handles[-1].wait(60_000, False)
        expected[n] = code
        n += 1
        # ... and a whole chunk after it goes through (resolved before the next error is set)
        batch = produce_numbered(producer, topic, n, n + chunk)
        resolve_all(batch)
        handles += batch
        n += chunk
    outcome = reconcile(cluster.bootstrap_servers, topic, handles, allow_failed_present=False)
    print(f"\n[non-retriable] {outcome}")
    assert outcome.failed == expected
    assert len(outcome.succeeded) == n - len(expected)
    dispatch = events.of_type("librdkafka.dispatch_error")
    assert sorted(e["label"] for e in dispatch) == sorted(expected)
    assert all(e["error"].code == expected[e["label"]] for e in dispatch)
    assert all(e["delivery_report"].label == e["label"] for e in dispatch)
    assert all(e["topic"] == topic for e in dispatch)


def test_non_retriable_error_in_produce_sync_raises_produce_error_with_the_label(
    cluster, make_producer
):
    topic = topic_on(cluster, "non-retriable-sync")
    producer = make_producer()
    events = Events(producer)
    warm_up(producer, cluster)
    cluster.push_request_errors(PRODUCE, ["cluster_authorization_failed"])
    with pytest.raises(ProduceError) as info:
        producer.produce_sync(topic=topic, payload=b"0", partition=0, label="order-1")
    cause = info.value.__cause__
    assert isinstance(cause, KafkaError) and cause.code == "cluster_authorization_failed"
    assert cause.rdkafka_response == 31 and not cause.fatal
    [sync_event] = events.of_type("message.produce_sync")
    assert sync_event["message"]["label"] == "order-1"
    assert sync_event["error"] is info.value
    [dispatch] = events.of_type("librdkafka.dispatch_error")
    assert dispatch["label"] == "order-1"
    assert producer.produce_sync(topic=topic, payload=b"1", partition=0).offset == 0


def test_topic_authorization_failed_is_reported_on_the_message_then_inline(
    cluster, make_producer
):
    """librdkafka marks the topic failed after a topic_authorization_failed response: later
    produces to it fail inline (ProduceError at the call, nothing queued) until metadata is
    refreshed; other topics are not affected. Either way the caller is told."""
    topic = topic_on(cluster, "topic-auth", partitions=1)
    producer = make_producer()
    events = Events(producer)
    warm_up(producer, cluster)
    cluster.push_request_errors(PRODUCE, ["topic_authorization_failed"])
    handle = producer.produce_async(topic=topic, payload=b"0", partition=0, label="a")
    assert handle.wait(60_000, False).error.code == "topic_authorization_failed"
    try:
        later = producer.produce_async(topic=topic, payload=b"1", partition=0, label="b")
    except ProduceError as error:
        assert error.__cause__.code == "topic_authorization_failed"
        assert [e["message"]["label"] for e in events.of_type("message.produce_async")] == ["b"]
        assert producer.queue_size == 0
    else:   # a librdkafka that does not keep the topic error: delivered normally
        assert later.wait(60_000, False).error is None
    assert producer.produce_sync(topic="warm-up", payload=b"other topic").error is None


# --- a broker down longer than message.timeout.ms ---------------------------------------------


def test_broker_down_beyond_message_timeout_reports_msg_timed_out_with_labels(
    cluster, make_producer
):
    topic = topic_on(cluster, "down-timeout", partitions=1)
    cluster.set_leader(topic, 0, 1)
    producer = make_producer({"message.timeout.ms": 1_500})
    events = Events(producer)
    producer.produce_sync(topic=topic, payload=b"0", partition=0, label=0)
    cluster.broker_down(1)

    handles = [producer.produce_async(topic=topic, payload=b"%d" % i, partition=0, label=i)
               for i in range(1, 101)]
    with pytest.raises(ProduceError) as sync_info:
        producer.produce_sync(topic=topic, payload=b"101", partition=0, label=101)
    with pytest.raises(ProduceManyError) as many_info:
        producer.produce_many_sync(
            [{"topic": topic, "payload": b"%d" % i, "partition": 0, "label": i}
             for i in range(102, 112)]
        )
    resolve_all(handles)

    for handle in handles:
        report = handle.wait(0, False)
        assert report.error.code == "msg_timed_out"
        assert report.error.rdkafka_response == -192
        assert report.label == handle.label
    with pytest.raises(KafkaError) as raised:
        handles[0].wait()
    assert raised.value.code == "msg_timed_out"

    assert sync_info.value.__cause__.code == "msg_timed_out"
    sync_events = events.of_type("message.produce_sync")
    assert [e["message"]["label"] for e in sync_events] == [101]
    assert sync_events[0]["error"] is sync_info.value

    dispatched = many_info.value.dispatched
    assert [h.label for h in dispatched] == list(range(102, 112))
    assert all(h.wait(0, False).error.code == "msg_timed_out" for h in dispatched)
    [many_event] = events.of_type("messages.produce_many_sync")
    assert many_event["error"] is many_info.value

    timed_out = sorted(e["label"] for e in events.of_type("librdkafka.dispatch_error")
                       if e["error"].code == "msg_timed_out")
    assert timed_out == list(range(1, 112))

    # the broker comes back: the producer delivers again, and nothing that timed out is there
    cluster.broker_up(1)
    assert producer.produce_sync(topic=topic, payload=b"112", partition=0, label=112).error is None
    close_within(producer)
    values = [int(m.value()) for m in read_all(cluster.bootstrap_servers, topic)]
    assert values[0] == 0 and values[-1] == 112
    assert set(values) <= {0, 112} | set(range(1, 112))
    assert len(values) == len(set(values))


# --- round-trip time --------------------------------------------------------------------------


@pytest.mark.parametrize("idempotent", [False, True], ids=["plain", "idempotent"])
def test_high_round_trip_time_still_delivers_everything_once(cluster, make_producer, idempotent):
    topic = topic_on(cluster, f"rtt-{idempotent}")
    producer = make_producer({"enable.idempotence": idempotent, "message.timeout.ms": 60_000})
    warm_up(producer, cluster)
    cluster.set_rtt(-1, 300)   # every response of every broker 300 ms late
    handles = produce_numbered(producer, topic, 0, COUNT // 2)
    handles += [producer.produce_sync(m) for m in numbered(topic, COUNT // 2, COUNT // 2 + 3)]
    handles += produce_numbered(producer, topic, COUNT // 2 + 3, COUNT)
    outcome = reconcile(cluster.bootstrap_servers, topic, handles, allow_failed_present=False)
    print(f"\n[rtt idempotent={idempotent}] {outcome}")
    assert len(outcome.succeeded) == COUNT


def test_round_trip_beyond_the_request_timeout_loses_nothing(
    cluster, make_producer
):
    """Responses slower than the request timeout: requests time out after the broker wrote
    them and are sent again. Every message gets a verdict and none is lost.

    Duplicates are allowed here: the mock cluster checks producer sequences only for
    transactional producers (rd_kafka_mock_validate_records returns early without a
    TransactionalId), so it writes an idempotent producer's retry a second time where a real
    broker would not. The no-duplicates promise is checked on real brokers, by
    tests/reliability/test_broker_failure.py's frozen-leader test."""
    topic = topic_on(cluster, "rtt-timeout")
    timed_out = threading.Event()

    class Spy(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "REQTMOUT" in record.getMessage() or "timed out" in record.getMessage():
                timed_out.set()

    logger = logging.getLogger(f"waterdrop.test.rtt.{id(timed_out)}")
    logger.addHandler(Spy())
    logger.propagate = False
    producer = make_producer(
        {
            "enable.idempotence": True,
            "socket.timeout.ms": 1_000,
            "request.timeout.ms": 1_000,
            "message.timeout.ms": 90_000,
        },
        logger=logger,
    )
    warm_up(producer, cluster)
    cluster.set_rtt(-1, 1_500)
    first = produce_numbered(producer, topic, 0, COUNT // 4)
    # requests time out (librdkafka logs it), then the cluster is made fast again
    assert timed_out.wait(60), "no request timed out"
    cluster.set_rtt(-1, 0)
    handles = first + produce_numbered(producer, topic, COUNT // 4, COUNT // 2)
    outcome = reconcile(cluster.bootstrap_servers, topic, handles, allow_duplicates=True)
    print(f"\n[rtt > request timeout, idempotent] {outcome}")
    assert len(outcome.succeeded) + len(outcome.failed) == COUNT // 2


# --- leader changes ---------------------------------------------------------------------------


@pytest.mark.parametrize("idempotent", [False, True], ids=["plain", "idempotent"])
def test_leader_changes_lose_nothing(cluster, make_producer, idempotent):
    topic = topic_on(cluster, f"leaders-{idempotent}")
    producer = make_producer({"enable.idempotence": idempotent, "retry.backoff.ms": 10,
                              "topic.metadata.refresh.interval.ms": 1_000})
    handles: list[Any] = []
    steps = 12
    chunk = COUNT // steps
    for step in range(steps):
        for partition in range(PARTITIONS):
            cluster.set_leader(topic, partition, (step + partition) % 3 + 1)
        handles += produce_numbered(producer, topic, step * chunk, (step + 1) * chunk)
    outcome = reconcile(cluster.bootstrap_servers, topic, handles, allow_failed_present=False)
    print(f"\n[leader changes idempotent={idempotent}] {outcome}")
    assert len(outcome.succeeded) == steps * chunk


# --- all brokers down, then back --------------------------------------------------------------


def test_all_brokers_down_then_back_loses_nothing_and_nothing_hangs(cluster, make_producer):
    topic = topic_on(cluster, "all-down")
    producer = make_producer({"enable.idempotence": True, "message.timeout.ms": 120_000,
                              "reconnect.backoff.max.ms": 200})
    events = Events(producer)
    warm_up(producer, cluster)
    first = produce_numbered(producer, topic, 0, COUNT // 4)
    resolve_all(first)
    for broker in range(1, 4):
        cluster.broker_down(broker)
    during = produce_numbered(producer, topic, COUNT // 4, COUNT // 2)
    # a produce_sync blocked on a dead cluster, in another thread
    sync_result: list[Any] = []
    [sync_message] = numbered(topic, COUNT // 2, COUNT // 2 + 1)
    sync_thread = threading.Thread(
        target=lambda: sync_result.append(producer.produce_sync(sync_message)), daemon=True
    )
    sync_thread.start()
    assert all(h.pending for h in during), "nothing can be delivered while every broker is down"
    wait_for(lambda: any(e["type"] == "librdkafka.error" for e in list(events.errors)), 60,
             "the client noticing the brokers are down")
    for broker in range(1, 4):
        cluster.broker_up(broker)
    sync_thread.join(120)
    assert not sync_thread.is_alive(), "produce_sync hung after the brokers came back"
    handles = first + during + sync_result
    handles += produce_numbered(producer, topic, COUNT // 2 + 1, COUNT)
    outcome = reconcile(cluster.bootstrap_servers, topic, handles, allow_failed_present=False)
    print(f"\n[all brokers down] {outcome}")
    assert len(outcome.succeeded) == COUNT
    close_within(producer)


def test_close_while_every_broker_is_down_returns_and_resolves_every_handle(
    cluster, make_producer
):
    topic = topic_on(cluster, "all-down-close")
    producer = make_producer({"message.timeout.ms": 120_000}, max_wait_timeout=2_000)
    warm_up(producer, cluster)
    for broker in range(1, 4):
        cluster.broker_down(broker)
    handles = produce_numbered(producer, topic, 0, 500)
    close_within(producer, force=True)
    assert not any(h.pending for h in handles)
    codes = {h.wait(0, False).error.code for h in handles}
    assert codes <= {"purge_queue", "purge_inflight"}


# --- queue full -------------------------------------------------------------------------------


def test_queue_full_fails_before_sending_and_the_dispatched_part_is_delivered(
    cluster, make_producer
):
    capacity = 50
    topic = topic_on(cluster, "queue-full", partitions=1)
    producer = make_producer(
        {"queue.buffering.max.messages": capacity, "message.timeout.ms": 120_000},
        wait_on_queue_full=False,
    )
    events = Events(producer)
    warm_up(producer, cluster)
    for broker in range(1, 4):
        cluster.broker_down(broker)
    messages = [{"topic": topic, "payload": b"%d" % i, "partition": 0, "label": i}
                for i in range(capacity * 2)]
    with pytest.raises(ProduceManyError) as info:
        producer.produce_many_async(messages)
    dispatched = info.value.dispatched
    assert info.value.__cause__.code == "queue_full"
    assert 0 < len(dispatched) <= capacity
    assert [h.label for h in dispatched] == list(range(len(dispatched)))
    with pytest.raises(ProduceError) as single:
        producer.produce_async(topic=topic, payload=b"x", partition=0, label="one-more")
    assert single.value.__cause__.code == "queue_full"
    assert [e["message"]["label"] for e in events.of_type("message.produce_async")] == ["one-more"]
    for broker in range(1, 4):
        cluster.broker_up(broker)
    # what was dispatched is delivered; what was refused was never sent
    outcome = reconcile(cluster.bootstrap_servers, topic, dispatched, allow_failed_present=False)
    assert len(outcome.succeeded) == len(dispatched) and outcome.read_back == len(dispatched)


def test_queue_full_with_waiting_delivers_everything_once(cluster, make_producer):
    topic = topic_on(cluster, "queue-full-wait")
    producer = make_producer(
        {"queue.buffering.max.messages": 20, "enable.idempotence": True},
        wait_on_queue_full=True, wait_timeout_on_queue_full=120_000,
        wait_backoff_on_queue_full=5,
    )
    events = Events(producer)
    cluster.set_rtt(-1, 50)   # slow brokers: the 20-message queue fills again and again
    handles = produce_numbered(producer, topic, 0, sized(1_000, 10_000))
    outcome = reconcile(cluster.bootstrap_servers, topic, handles, allow_failed_present=False)
    waits = [e for e in events.of_type("message.produce_async")
             if e["error"].__cause__.code == "queue_full"]
    print(f"\n[queue full, waiting] {outcome} queue_full_waits={len(waits)}")
    assert len(outcome.succeeded) == len(handles)
    assert waits, "the queue never filled: the case proved nothing"


# --- waits longer than any clock -------------------------------------------------------------


@pytest.mark.parametrize("wait_ms", [10**13, 2**53])
def test_a_very_long_wait_waits_instead_of_timing_out_at_once(cluster, make_producer, wait_ms):
    """A deadline beyond int64 nanoseconds must mean "forever", not "already passed"."""
    topic = topic_on(cluster, f"long-wait-{wait_ms}", partitions=1)
    producer = make_producer()
    warm_up(producer, cluster)
    cluster.set_rtt(-1, 300)      # the answer takes a while: the wait really waits
    handle = producer.produce_async(topic=topic, payload=b"0", partition=0, label=0)
    assert handle.wait(wait_ms).offset == 0
    try:
        variant = producer.variant(max_wait_timeout=wait_ms)
    except Exception as error:  # noqa: BLE001 - refusing such a setting is fine too
        assert type(error).__name__ == "VariantInvalidError", repr(error)
        return
    assert variant.produce_sync(topic=topic, payload=b"1", partition=0).offset == 1
