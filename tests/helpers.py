"""Shared test helpers: unique names, topic creation and an independent reader.

Everything written by waterdrop is read back with confluent-kafka (its own librdkafka), so
nothing is checked only by the code that wrote it.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

#: How long a reader waits for the messages it expects; the loop ends as soon as they arrive.
CONSUME_DEADLINE_S = 30.0


def unique_topic(prefix: str = "wd-test") -> str:
    """A topic name nobody else uses (valid under WaterDrop's topic regex)."""
    return f"{prefix}-{uuid.uuid4().hex}"


def create_topic(
    bootstrap: str,
    name: str | None = None,
    partitions: int = 1,
    config: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> str:
    """Create ``name`` (a fresh unique name by default) and wait until every partition has a
    leader, so that a producer's first metadata request already sees all of them."""
    name = name or unique_topic()
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=timeout,
        request_timeout=timeout,
    )
    futures[name].result(timeout=timeout)
    deadline = time.monotonic() + timeout
    while True:
        meta = admin.list_topics(topic=name, timeout=timeout).topics.get(name)
        if (
            meta is not None
            and meta.error is None
            and len(meta.partitions) == partitions
            and all(p.leader >= 0 for p in meta.partitions.values())
        ):
            return name
        if time.monotonic() > deadline:
            raise AssertionError(f"topic {name} has no leader for every partition after {timeout}s")
        time.sleep(0.05)


def _consumer(bootstrap: str, extra: dict[str, Any] | None = None) -> Consumer:
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": f"wd-test-{uuid.uuid4().hex}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
    }
    conf.update(extra or {})
    return Consumer(conf)


def consume(
    bootstrap: str,
    topic: str,
    count: int,
    deadline_s: float = CONSUME_DEADLINE_S,
    consumer_config: dict[str, Any] | None = None,
) -> list[Any]:
    """Read ``topic`` from the beginning of every partition until ``count`` messages arrived
    or ``deadline_s`` passed; return the confluent_kafka Messages in arrival order.

    Partitions are assigned directly (no group rebalance to wait for); the group id is unique.
    """
    consumer = _consumer(bootstrap, consumer_config)
    try:
        meta = consumer.list_topics(topic=topic, timeout=deadline_s).topics[topic]
        consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(meta.partitions)]
        )
        messages: list[Any] = []
        end = time.monotonic() + deadline_s
        while len(messages) < count and time.monotonic() < end:
            batch = consumer.consume(num_messages=min(10_000, count - len(messages)), timeout=0.5)
            for message in batch:
                if message.error() is not None:
                    raise AssertionError(f"consumer error: {message.error()}")
                messages.append(message)
        return messages
    finally:
        consumer.close()


def message_count(bootstrap: str, topic: str, timeout: float = 10.0) -> int:
    """How many messages the topic holds: the sum of (high - low) watermarks."""
    consumer = _consumer(bootstrap)
    try:
        meta = consumer.list_topics(topic=topic, timeout=timeout).topics[topic]
        total = 0
        for partition in meta.partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout, cached=False
            )
            total += high - low
        return total
    finally:
        consumer.close()


def headers_of(message: Any) -> list[tuple[str, bytes]]:
    """A consumed message's headers as a list of (name, value) in wire order."""
    return list(message.headers() or [])


#: Generous bound for a close() that must not hang (a hang detector, not a timing assertion).
CLOSE_DEADLINE_S = 30.0


def close_within(producer: Any, force: bool = False, deadline_s: float = CLOSE_DEADLINE_S) -> None:
    """Close ``producer`` and fail (instead of hanging the run) if close() does not return."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            producer.close(force=force) if force else producer.close()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, daemon=True, name="close_within")
    thread.start()
    thread.join(deadline_s)
    if thread.is_alive():
        raise AssertionError(f"producer.close(force={force}) did not return within {deadline_s} s")
    if outcome[0] is not None:
        raise outcome[0]
