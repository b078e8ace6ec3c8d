"""The seed's "Buffering" section, run as written (in Python) against the real broker, plus
the flush failure paths: what was not sent goes back to the front of the internal buffer."""

from __future__ import annotations

import time

import pytest

from tests.helpers import consume, create_topic, message_count
from waterdrop import MessageInvalidError, ProduceManyError, Producer
from waterdrop.testing import MockCluster

DEADLINE_S = 30.0
LINGER_MS = 2_000


def test_buffering_messages_based_on_application_logic(kafka_bootstrap, capsys):
    topic = create_topic(kafka_bootstrap)
    seen_before_flush = []

    # --- the seed's example ---
    producer = Producer()
    producer.setup(kafka={"bootstrap.servers": kafka_bootstrap})

    # Simulating some events states of a transaction - notice, that the messages will be
    # flushed to kafka only upon arrival of the `finished` state.
    for state in ("started", "processed", "finished"):
        producer.buffer(topic=topic, payload=state)

        print(f"The messages buffer size {len(producer.messages)}")
        if state == "finished":
            seen_before_flush.append(message_count(kafka_bootstrap, topic))
            producer.flush_sync()
        print(f"The messages buffer size {len(producer.messages)}")

    producer.close()
    # --- end of the example ---

    assert capsys.readouterr().out.splitlines() == [
        "The messages buffer size 1",
        "The messages buffer size 1",
        "The messages buffer size 2",
        "The messages buffer size 2",
        "The messages buffer size 3",
        "The messages buffer size 0",
    ]
    assert seen_before_flush == [0]  # nothing left the process before flush_sync
    messages = consume(kafka_bootstrap, topic, 3)
    assert [m.value() for m in messages] == [b"started", b"processed", b"finished"]


def test_messages_is_a_read_only_view(kafka_bootstrap):
    with Producer(kafka={"bootstrap.servers": kafka_bootstrap}) as producer:
        producer.buffer(topic="t", payload=b"x")
        view = producer.messages
        with pytest.raises((TypeError, AttributeError)):
            view.append({"topic": "t", "payload": b"y"})  # type: ignore[attr-defined]
        assert len(producer.messages) == 1
        producer.purge()
        assert producer.messages == ()


def test_rdkafka_buffers_flush_periodically(kafka_bootstrap):
    """The seed's queue.buffering.max.ms example, scaled down: a 2 s linger instead of 10 s
    and 6 messages 0.2 s apart instead of 30 one second apart."""
    topic = create_topic(kafka_bootstrap)

    producer = Producer()
    producer.setup(
        kafka={
            "bootstrap.servers": kafka_bootstrap,
            # Accumulate messages for at most 2 seconds
            "queue.buffering.max.ms": LINGER_MS,
        }
    )
    producer.partition_count(topic)  # connected and metadata known: only the linger remains

    # waterdrop will flush messages at least once every 2 seconds
    start = time.monotonic()
    handles = []
    for i in range(6):
        handles.append(producer.produce_async(topic=topic, payload=str(i)))
        time.sleep(0.2)
    produced_in = time.monotonic() - start

    if produced_in < LINGER_MS / 1000 * 0.75:  # a very slow machine cannot tell the two apart
        # still within the first linger: the batch has not been sent
        assert all(h.pending for h in handles)
        assert message_count(kafka_bootstrap, topic) == 0

    reports = [h.wait(DEADLINE_S * 1000) for h in handles]
    assert all(r.error is None for r in reports)
    # the first message waited out (most of) the linger before it was sent
    assert reports[0].latency_ms >= LINGER_MS * 0.5
    producer.close()

    messages = consume(kafka_bootstrap, topic, 6)
    assert [m.value() for m in messages] == [str(i).encode() for i in range(6)]


def test_close_sends_what_rdkafka_still_buffers(kafka_bootstrap):
    """A linger far longer than the test: only close() can have sent the messages."""
    topic = create_topic(kafka_bootstrap)
    producer = Producer(
        kafka={"bootstrap.servers": kafka_bootstrap, "queue.buffering.max.ms": 60_000}
    )
    producer.partition_count(topic)
    handles = [producer.produce_async(topic=topic, payload=str(i)) for i in range(5)]
    assert all(h.pending for h in handles)
    assert message_count(kafka_bootstrap, topic) == 0

    start = time.monotonic()
    producer.close()
    assert time.monotonic() - start < 30.0  # generous, far below the 60 s linger
    assert all(not h.pending and h.wait(0).error is None for h in handles)
    messages = consume(kafka_bootstrap, topic, 5)
    assert [m.value() for m in messages] == [str(i).encode() for i in range(5)]


def test_flush_puts_the_whole_batch_back_on_message_invalid(kafka_bootstrap):
    topic = create_topic(kafka_bootstrap)
    producer = Producer(kafka={"bootstrap.servers": kafka_bootstrap})
    late = {"topic": topic, "payload": b"buffered during the flush"}
    injected = []

    # middleware runs at flush time: use it to buffer a message while the flush is running,
    # as another thread could
    def buffer_during_flush(message):
        if not injected:
            injected.append(producer.buffer(late))
        return message

    producer.middleware.append(buffer_during_flush)
    batch = [
        {"topic": topic, "payload": b"first"},
        {"topic": "", "payload": b"invalid topic"},
        {"topic": topic, "payload": b"third"},
    ]
    producer.buffer_many(batch)

    with pytest.raises(MessageInvalidError) as info:
        producer.flush_sync()
    assert "topic" in info.value.errors
    # the whole batch is back, in order, in front of what was buffered meanwhile
    assert [m["payload"] for m in producer.messages] == [
        b"first",
        b"invalid topic",
        b"third",
        b"buffered during the flush",
    ]
    assert message_count(kafka_bootstrap, topic) == 0  # nothing of the batch was sent

    with pytest.raises(MessageInvalidError):
        producer.flush_async()
    assert len(producer.messages) == 4

    # drop the bad batch, send the rest
    producer.purge()
    producer.buffer_many([batch[0], batch[2], late])
    handles = producer.flush_sync()
    assert len(handles) == 3 and all(not h.pending for h in handles)
    assert producer.messages == ()
    producer.close()
    messages = consume(kafka_bootstrap, topic, 3)
    assert [m.value() for m in messages] == [b"first", b"third", b"buffered during the flush"]


def test_flush_puts_what_was_not_dispatched_back_at_the_front():
    """A partial dispatch (librdkafka's queue full, no waiting): the dispatched messages
    stay dispatched, the others go back to the front of the buffer."""
    with MockCluster(brokers=1) as cluster:
        cluster.create_topic("partial", partitions=1)
        producer = Producer(
            kafka={
                "bootstrap.servers": cluster.bootstrap_servers,
                "queue.buffering.max.messages": 5,
            },
            wait_on_queue_full=False,
        )
        try:
            producer.produce_sync(topic="partial", payload=b"connect")
            cluster.broker_down(1)
            producer.buffer_many(
                [{"topic": "partial", "partition": 0, "payload": f"m{i}"} for i in range(8)]
            )
            with pytest.raises(ProduceManyError) as info:
                producer.flush_async()
            assert len(info.value.dispatched) == 5
            assert info.value.__cause__.code == "queue_full"
            assert [m["payload"] for m in producer.messages] == ["m5", "m6", "m7"]

            cluster.broker_up(1)
            assert all(h.wait(DEADLINE_S * 1000).error is None for h in info.value.dispatched)
            handles = producer.flush_sync()
            offsets = [h.wait(0).offset for h in info.value.dispatched + handles]
            assert offsets == list(range(1, 9))  # in order, nothing lost or doubled
        finally:
            cluster.broker_up(1)
            producer.close()
