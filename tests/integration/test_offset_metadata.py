"""Offset metadata committed in a transaction, read back by a reader that is not librdkafka.

``transaction_mark_as_consumed(consumer, message, metadata)`` must store exactly the bytes of
``metadata`` (its UTF-8 form), as WaterDrop does: Kafka's own Java Admin client
(``java_offsets``, see tests/integration/java_admin.py) reads them back byte for byte.
"""

from __future__ import annotations

import uuid

import pytest

from tests.helpers import create_topic


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


@pytest.mark.parametrize(
    "metadata",
    ["second", "zażółć 偏移 ✓", "", None],
    ids=["ascii", "non-ascii", "empty", "none"],
)
def test_offset_metadata_reads_back_byte_for_byte_in_java(
    kafka_bootstrap, make_producer, java_offsets, metadata
):
    source = create_topic(kafka_bootstrap, partitions=2)
    group = unique("wd-meta")
    txn = make_producer({"transactional.id": unique("wd-meta")})
    with txn.transaction():
        txn.transaction_mark_as_consumed(group, (source, 1, 6), metadata)
    expected = b"" if metadata is None else metadata.encode("utf-8")
    assert java_offsets(group) == {(source, 1): (7, expected)}


def test_offset_metadata_of_several_transactions_reads_back_in_java(
    kafka_bootstrap, make_producer, java_offsets
):
    """Each partition keeps its last committed offset and metadata, exactly."""
    source = create_topic(kafka_bootstrap, partitions=2)
    group = unique("wd-meta")
    txn = make_producer({"transactional.id": unique("wd-meta")})
    with txn.transaction():
        txn.transaction_mark_as_consumed(group, (source, 0, 0), "first")
        txn.transaction_mark_as_consumed(group, (source, 1, 2), "p1")
    with txn.transaction():
        txn.transaction_mark_as_consumed(group, (source, 0, 1), "second")
    assert java_offsets(group) == {(source, 0): (2, b"second"), (source, 1): (3, b"p1")}
