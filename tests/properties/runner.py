"""The per-example checks shared by the property suites (single messages and batches)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.properties.ledger import (
    Ledger,
    assert_accepted_ok,
    assert_contract_error,
    assert_nothing_sent,
)
from tests.properties.oracle import INVALID, VALID, judge
from waterdrop import KafkaError, MessageInvalidError, ProduceError
from waterdrop.errors import ProduceManyError

WAIT_MS = 60_000


def _snapshot(message: Any) -> Any:
    if isinstance(message, Mapping):
        return [(k, id(v)) for k, v in message.items()]
    return id(message)


def _kafka_cause(error: ProduceError) -> KafkaError:
    cause = error.__cause__
    assert isinstance(cause, KafkaError), f"ProduceError caused by {cause!r}"
    return cause


def run_single(
    sender: Any,
    producer: Any,
    ledger: Ledger,
    message: Any,
    how: str,
    *,
    max_payload: int = 1_000_012,
    refusals: tuple[type[BaseException], ...] = (),
) -> str:
    """Send ``message`` through ``sender`` (a producer or a variant) with ``how`` (async,
    sync, kwargs): accepted and intact, or refused with nothing sent. ``refusals``: other
    contract errors that may refuse it (a variant's or the settings' own), nothing sent.
    Returns what happened: accepted, refused, inline, or the refusal's class name."""
    verdict = judge(message, ledger.topic, partitions=1, max_payload=max_payload)
    before = _snapshot(message)
    if how == "kwargs" and not (
        isinstance(message, Mapping) and all(isinstance(k, str) for k in message)
    ):
        how = "async"
    try:
        if how == "sync":
            report = sender.produce_sync(message)
        elif how == "kwargs":
            report = sender.produce_async(**dict(message)).wait(WAIT_MS, False)
        else:
            report = sender.produce_async(message).wait(WAIT_MS, False)
    except MessageInvalidError as error:
        assert_contract_error(error, verdict)
        assert_nothing_sent(producer)
        ledger.refused += 1
        return "refused"
    except ProduceError as error:
        cause = _kafka_cause(error)
        assert verdict.kind != INVALID, f"invalid message reached librdkafka: {verdict.reasons}"
        assert cause.code in verdict.inline_ok, f"unexpected inline error {cause!r}"
        assert_nothing_sent(producer)
        ledger.inline += 1
        return "inline"
    except refusals as error:
        assert isinstance(error.errors, dict) and error.errors, "errors names no field"
        assert_nothing_sent(producer)
        return type(error).__name__
    finally:
        assert _snapshot(message) == before, "the producer changed the caller's message"
    assert_accepted_ok(verdict)
    ledger.add(report, verdict)
    ledger.end_example()
    return "accepted"


def run_batch(sender: Any, producer: Any, ledger: Ledger, batch: list[Any], how: str) -> None:
    """Send ``batch`` with ``how`` (async, sync, buffer): all accepted and intact, or all
    refused with nothing sent (or, for a librdkafka refusal at the call, exactly the
    messages before it sent and listed in ``.dispatched``)."""
    verdicts = [judge(m, ledger.topic, partitions=1) for m in batch]
    try:
        if how == "async":
            handles = sender.produce_many_async(batch)
        elif how == "sync":
            handles = sender.produce_many_sync(batch)
        else:
            sender.buffer_many(batch)
            handles = sender.flush_sync()
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
        # librdkafka refused one message at the call (too large for message.max.bytes, a
        # partition the topic lacks): the ones before it went out, and .dispatched says so
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
        ledger.end_example()
        return
    assert all(v.kind != INVALID for v in verdicts), (
        f"an invalid message was accepted: {[v.reasons for v in verdicts]}"
    )
    assert len(handles) == len(batch)
    for handle, verdict in zip(handles, verdicts):
        ledger.add(handle.wait(WAIT_MS, False), verdict)
    assert not producer.messages
    ledger.end_example()
