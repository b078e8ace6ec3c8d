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
from tests.reliability.kafka_cluster import read_all


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


def _header_name(name: str) -> str:
    return name


class Ledger:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.accepted: list[tuple[Any, Verdict]] = []
        self.refused = 0
        self.inline = 0

    def add(self, report: Any, verdict: Verdict) -> None:
        assert report.error is None, f"delivery failed: {report.error!r}"
        assert report.topic_name == self.topic
        assert report.label is verdict.label, "the label is not the message's own"
        if verdict.partition is not None:
            assert report.partition == verdict.partition
        self.accepted.append((report, verdict))

    def verify(self) -> str:
        messages = read_all(self.bootstrap, self.topic)
        by_place = {(m.partition(), m.offset()): m for m in messages}
        places = [(r.partition, r.offset) for r, _ in self.accepted]
        assert len(set(places)) == len(places), "two accepted messages share an offset"
        assert len(messages) == len(self.accepted), (
            f"the topic holds {len(messages)} messages, {len(self.accepted)} were accepted: "
            "something refused was sent (or something accepted was lost)"
        )
        for report, verdict in self.accepted:
            message = by_place.get((report.partition, report.offset))
            assert message is not None, f"accepted message missing at {report!r}"
            where = f"message at {report.partition}/{report.offset} ({verdict.reasons})"
            assert message.value() == verdict.value, f"{where}: value differs"
            assert message.key() == verdict.key, f"{where}: key differs"
            got = [(name, value if value is not None else b"")
                   for name, value in (message.headers() or [])]
            assert got == verdict.headers, f"{where}: headers {got!r} != {verdict.headers!r}"
            if verdict.timestamp is not None:
                assert message.timestamp()[1] == verdict.timestamp, f"{where}: timestamp"
        return (f"accepted={len(self.accepted)} refused={self.refused} "
                f"inline_refusals={self.inline} read_back={len(messages)}")
