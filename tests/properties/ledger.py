"""Bookkeeping shared by the property suites.

``Ledger`` keeps every accepted message's report and the oracle's verdict; ``verify()``
reads the topic back with confluent-kafka (once, at the end: batching keeps 2,000+ examples
fast) and checks each message byte for byte at the offset its report gave, and that the
topic holds nothing else. ``assert_nothing_sent`` is the per-example check after a
refusal: librdkafka holds no message and no handle.
"""

from __future__ import annotations

from typing import Any

from tests.properties.oracle import EITHER, INVALID, VALID, Verdict


def assert_nothing_sent(producer: Any) -> None:
    assert producer.queue_size == 0, f"queue_size {producer.queue_size} after a refusal"
    client = producer._client
    if client is not None and hasattr(client, "handles_in_flight"):
        assert client.handles_in_flight == 0, (
            f"{client.handles_in_flight} handles in flight after a refusal"
        )


def assert_contract_error(error: Any, verdict: Verdict) -> None:
    assert verdict.kind in (INVALID, EITHER), (
        f"a valid message was refused: {error.errors!r}"
    )
    assert isinstance(error.errors, dict) and error.errors, "errors names no field"
    assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in error.errors.items())


def assert_accepted_ok(verdict: Verdict) -> None:
    assert verdict.kind in (VALID, EITHER), (
        f"an invalid message was accepted (reasons: {verdict.reasons})"
    )


class Ledger:
    """Accepted messages of a one-partition topic, checked against the topic in rounds
    (librdkafka's mock cluster keeps only a few MB per partition, so huge payloads are read
    back before they are evicted)."""

    ROUND_BYTES = 1_000_000

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.pending: list[tuple[Any, Verdict]] = []
        self.pending_bytes = 0
        self.next_offset: int | None = None
        self.accepted = 0
        self.checked = 0
        self.refused = 0
        self.inline = 0
        self.evicted = 0
        self.consumer: Any = None

    def add(self, report: Any, verdict: Verdict) -> None:
        assert report.error is None, f"delivery failed: {report.error!r}"
        assert report.topic_name == self.topic
        assert report.label is verdict.label, "the label is not the message's own"
        assert report.partition == 0
        expected, self.next_offset = self.next_offset, report.offset + 1
        if expected is not None:
            # accepted messages are waited for before the next example and refused ones never
            # reach the topic: offsets are consecutive, or something was sent that should not
            # have been
            if report.offset != expected:
                self.pending = []          # start afresh: the next examples are judged alone
                raise AssertionError(
                    f"offset {report.offset}, expected {expected}: a refused message was "
                    "sent, or an accepted one written twice")
        self.pending.append((report, verdict))
        self.accepted += 1
        self.pending_bytes += len(verdict.value or b"") + 64 + sum(
            len(name) + len(value) for name, value in verdict.headers)

    def end_example(self) -> None:
        """After each example (every handle resolved): read back once enough has piled up."""
        if self.pending_bytes > self.ROUND_BYTES:
            self.verify_pending()

    def verify_pending(self) -> None:
        if not self.pending:
            return
        pending, self.pending, self.pending_bytes = self.pending, [], 0
        self._verify(pending)

    def _verify(self, pending: list[tuple[Any, Verdict]]) -> None:
        first = pending[0][0].offset
        low, high = self._watermarks()
        # the mock cluster keeps 5 MB per partition: a batch of several huge payloads may
        # push the oldest ones out before they can be read (counted, never compared)
        retained = [(r, v) for r, v in pending if r.offset >= low]
        self.evicted += len(pending) - len(retained)
        messages = self._read(max(first, low), high)
        by_offset = {m.offset(): m for m in messages}
        if high - first != len(pending) or len(messages) != len(retained):
            self.next_offset = None
            raise AssertionError(
                f"the topic holds offsets {first}..{high - 1} (read {len(messages)} from "
                f"{max(first, low)}), {len(pending)} messages were accepted")
        for report, verdict in retained:
            message = by_offset.get(report.offset)
            assert message is not None, f"accepted message missing at {report!r}"
            where = f"message at offset {report.offset} ({verdict.reasons})"
            assert message.value() == verdict.value, f"{where}: value differs"
            assert message.key() == verdict.key, f"{where}: key differs"
            got = [(name, value if value is not None else b"")
                   for name, value in (message.headers() or [])]
            # confluent-kafka reads a header name as a C string: it ends at the first NUL
            # (the bytes on the wire are intact: aiokafka reads "a\x00b" back whole)
            want = [(name.split("\x00", 1)[0], value) for name, value in verdict.headers]
            assert got == want, f"{where}: headers {got!r} != {want!r}"
            if verdict.timestamp is not None:
                assert message.timestamp()[1] == verdict.timestamp, (
                    f"{where}: timestamp {message.timestamp()} != {verdict.timestamp}")
        self.checked += len(retained)

    def _consumer(self) -> Any:
        if self.consumer is None:
            from confluent_kafka import Consumer

            self.consumer = Consumer({
                "bootstrap.servers": self.bootstrap,
                "group.id": f"wd-prop-{self.topic}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 10,
            })
        return self.consumer

    def _watermarks(self) -> tuple[int, int]:
        from confluent_kafka import TopicPartition

        return self._consumer().get_watermark_offsets(
            TopicPartition(self.topic, 0), timeout=30, cached=False)

    def _read(self, start: int, high: int, deadline_s: float = 60.0) -> list[Any]:
        """Offsets start..high-1 of partition 0, read by one long-lived consumer."""
        import time

        from confluent_kafka import TopicPartition

        consumer = self._consumer()
        consumer.assign([TopicPartition(self.topic, 0, start)])
        messages: list[Any] = []
        end = time.monotonic() + deadline_s
        while start < high and (not messages or messages[-1].offset() < high - 1):
            assert time.monotonic() < end, f"read {len(messages)} of {high - start} in time"
            for message in consumer.consume(num_messages=1000, timeout=0.2):
                if message.error() is None:
                    messages.append(message)
        return messages

    def close(self) -> None:
        if self.consumer is not None:
            self.consumer.close()
            self.consumer = None

    def verify(self) -> str:
        self.verify_pending()
        self.close()
        assert self.checked + self.evicted == self.accepted
        assert self.evicted <= self.accepted // 20, f"{self.evicted} evicted before checked"
        return (f"accepted={self.accepted} (read back and compared: {self.checked}, "
                f"evicted unread: {self.evicted}) "
                f"refused={self.refused} inline_refusals={self.inline}")
