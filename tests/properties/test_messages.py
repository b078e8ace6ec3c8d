"""Property: any message is either accepted and delivered intact, or refused with
MessageInvalidError before anything is sent. Never a crash, a hang, a TypeError (or any other
stray exception) from inside the core, or a partly sent batch.

Every accepted message is waited for (so "nothing queued" can be checked exactly after each
refusal) and checked byte for byte against an independent reading of the contract
(oracle.py) when the topic is read back, once, at the end.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import close_within
from tests.properties.conftest import PROPERTY_SETTINGS
from tests.properties.ledger import (
    Ledger,
    assert_accepted_ok,
    assert_contract_error,
    assert_nothing_sent,
)
from tests.properties.oracle import INVALID, VALID, judge
from tests.properties.strategies import containers
from tests.reliability.sizes import sized
from waterdrop import KafkaError, MessageInvalidError, ProduceError, Producer
from waterdrop.errors import ProduceManyError

WAIT_MS = 60_000

pytestmark = pytest.mark.timeout(sized(600, 7_200))


def _snapshot(message: Any) -> Any:
    if isinstance(message, Mapping):
        return [(k, id(v)) for k, v in message.items()]
    return id(message)


@pytest.fixture
def setup(mock_cluster, request):
    topic = f"prop-{request.node.name.split('[')[0][-40:].replace('_', '-')}"
    mock_cluster.create_topic(topic, partitions=1)
    producer = Producer(
        kafka={"bootstrap.servers": mock_cluster.bootstrap_servers, "linger.ms": 0},
        max_wait_timeout=WAIT_MS,
    )
    producer.produce_sync(topic="prop-warm-up", payload=b"warm")  # connected, metadata known
    ledger = Ledger(mock_cluster.bootstrap_servers, topic)
    yield producer, ledger
    close_within(producer)


def _kafka_cause(error: ProduceError) -> KafkaError:
    cause = error.__cause__
    assert isinstance(cause, KafkaError), f"ProduceError caused by {cause!r}"
    return cause


def test_single_messages_are_delivered_intact_or_refused_before_sending(setup):
    producer, ledger = setup
    topic = ledger.topic

    @PROPERTY_SETTINGS
    @given(containers(topic), st.sampled_from(["async", "sync", "kwargs"]))
    def prop(message: Any, how: str) -> None:
        verdict = judge(message, topic, partitions=1)
        before = _snapshot(message)
        if how == "kwargs" and not (
            isinstance(message, Mapping) and all(isinstance(k, str) for k in message)
        ):
            how = "async"
        try:
            if how == "sync":
                report = producer.produce_sync(message)
            elif how == "kwargs":
                report = producer.produce_async(**dict(message)).wait(WAIT_MS, False)
            else:
                report = producer.produce_async(message).wait(WAIT_MS, False)
        except MessageInvalidError as error:
            assert_contract_error(error, verdict)
            assert_nothing_sent(producer)
            ledger.refused += 1
            return
        except ProduceError as error:
            cause = _kafka_cause(error)
            assert verdict.kind != INVALID, f"invalid message reached librdkafka: {verdict.reasons}"
            assert cause.code in verdict.inline_ok, f"unexpected inline error {cause!r}"
            assert_nothing_sent(producer)
            ledger.inline += 1
            return
        finally:
            assert _snapshot(message) == before, "the producer changed the caller's message"
        assert_accepted_ok(verdict)
        assert not verdict.inline_ok or verdict.kind != INVALID
        ledger.add(report, verdict)

    prop()
    summary = ledger.verify()
    print(f"\n[single messages] {summary}")
    assert ledger.accepted and ledger.refused


def test_batches_are_all_delivered_or_all_refused(setup):
    producer, ledger = setup
    topic = ledger.topic

    @PROPERTY_SETTINGS
    @given(st.lists(containers(topic), min_size=1, max_size=6),
           st.sampled_from(["async", "sync", "buffer"]))
    def prop(batch: list[Any], how: str) -> None:
        verdicts = [judge(m, topic, partitions=1) for m in batch]
        try:
            if how == "async":
                handles = producer.produce_many_async(batch)
            elif how == "sync":
                handles = producer.produce_many_sync(batch)
            else:
                producer.buffer_many(batch)
                handles = producer.flush_sync()
        except MessageInvalidError as error:
            assert any(v.kind != VALID for v in verdicts), (
                f"a valid batch was refused: {error.errors!r}"
            )
            assert isinstance(error.errors, dict) and error.errors
            assert_nothing_sent(producer)
            if how == "buffer":
                # nothing was sent: the whole batch is back in the buffer, in order
                assert list(producer.messages) == batch
                producer.purge()
                assert not producer.messages
            ledger.refused += 1
            return
        except ProduceManyError as error:
            # librdkafka refused one message at the call (too large for message.max.bytes,
            # a partition the topic lacks): the ones before it went out, and say so
            code = _kafka_cause(error).code
            dispatched = error.dispatched
            assert all(v.kind != INVALID for v in verdicts), "invalid batch reached librdkafka"
            assert code in verdicts[len(dispatched)].inline_ok, f"unexpected {code}"
            for handle, verdict in zip(dispatched, verdicts):
                ledger.add(handle.wait(WAIT_MS, False), verdict)
            if how == "buffer":
                assert list(producer.messages) == batch[len(dispatched):]
                producer.purge()
            assert_nothing_sent(producer)
            ledger.inline += 1
            return
        assert all(v.kind != INVALID for v in verdicts), (
            f"an invalid message was accepted: {[v.reasons for v in verdicts]}"
        )
        assert len(handles) == len(batch)
        for handle, verdict in zip(handles, verdicts):
            ledger.add(handle.wait(WAIT_MS, False), verdict)
        assert not producer.messages

    prop()
    summary = ledger.verify()
    print(f"\n[batches] {summary}")
    assert ledger.accepted and ledger.refused
