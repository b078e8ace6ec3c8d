"""The one client reload (``Producer._reload_after_fatal``) and its two policies.

The idempotent policy (a dispatch hit a fatal error) and the transaction policy (a librdkafka
error ended a transaction) differ only in data (``waterdrop.producer._internal.ReloadPolicy``):
the settings that allow an attempt, the backoff, the ``error.occurred`` reported first, whether
only a client in librdkafka's fatal state is rebuilt, whether the old client's queue is flushed.
A fake client (``Dummy`` with a settable fatal state) makes every branch observable.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from waterdrop import ProduceError, Producer, Status
from waterdrop.clients import Dummy
from waterdrop.errors import KafkaError
from waterdrop.producer import transactions
from waterdrop.producer._internal import IDEMPOTENT, TRANSACTION

FENCED = KafkaError(-144, "fenced", "fenced by a newer producer", fatal=True)
EPOCH = KafkaError(47, "invalid_producer_epoch", "test", fatal=True)


class FatalClient(Dummy):
    """A Dummy whose fatal state is set by the test; records how it was closed."""

    built: list[FatalClient] = []
    failing_produces = 0  # how many produce calls raise EPOCH before one succeeds

    def __init__(self, producer: Any) -> None:
        super().__init__(producer)
        self.fatal: KafkaError | None = None
        self.closed: list[tuple[int, bool]] = []
        FatalClient.built.append(self)

    def fatal_error(self) -> KafkaError | None:  # type: ignore[override]
        return self.fatal

    def close(self, timeout_ms: int = -1, force: bool = False) -> bool:
        self.closed.append((timeout_ms, force))
        return True

    def produce(self, message: Any, *args: Any, **kwargs: Any) -> Any:
        if FatalClient.failing_produces:
            FatalClient.failing_produces -= 1
            self.fatal = EPOCH
            raise EPOCH
        return super().produce(message, *args, **kwargs)


@pytest.fixture(autouse=True)
def _fresh_clients(monkeypatch):
    FatalClient.built = []
    FatalClient.failing_produces = 0
    sleeps: list[float] = []
    monkeypatch.setattr(time, "sleep", sleeps.append)
    return sleeps


def make(transactional: bool = False, **settings: Any) -> Producer:
    kafka: dict[str, Any] = {"bootstrap.servers": "127.0.0.1:9", "enable.idempotence": True}
    if transactional:
        kafka["transactional.id"] = "wd-reload-test"
    settings.setdefault("max_wait_timeout", 5_000)
    return Producer(kafka=kafka, client_class=FatalClient, **settings)


def record(producer: Producer) -> list[tuple[str, dict[str, Any]]]:
    seen: list[tuple[str, dict[str, Any]]] = []
    for name in ("error.occurred", "producer.reload", "producer.reloaded", "buffer.purged"):
        producer.monitor.subscribe(name, lambda e: seen.append((e.id, dict(e.payload))))
    return seen


# --- the data --------------------------------------------------------------------------------


def test_policies_read_their_own_settings():
    config = make(
        reload_on_idempotent_fatal_error=True,
        max_attempts_on_idempotent_fatal_error=2,
        reload_on_transaction_fatal_error=False,
    ).config
    assert IDEMPOTENT.allows(config, EPOCH, 1)
    assert IDEMPOTENT.allows(config, EPOCH, 2)
    assert not IDEMPOTENT.allows(config, EPOCH, 3)
    assert not TRANSACTION.allows(config, EPOCH, 1)


def test_non_reloadable_errors_are_refused_by_both_policies():
    config = make(
        reload_on_idempotent_fatal_error=True,
        reload_on_transaction_fatal_error=True,
        non_reloadable_errors=["invalid_producer_epoch"],
    ).config
    assert not IDEMPOTENT.allows(config, EPOCH, 1)
    assert not TRANSACTION.allows(config, EPOCH, 1)
    assert TRANSACTION.allows(config, FENCED, 1)


# --- the one implementation, with each policy ---------------------------------------------------


def test_idempotent_reload_reports_first_drops_the_queue_and_backs_off(_fresh_clients):
    producer = make(wait_backoff_on_idempotent_fatal_error=250)
    seen = record(producer)
    old = producer.client
    old.fatal = EPOCH
    producer.buffer(topic="t", payload=b"dropped")
    producer._reload_after_fatal(EPOCH, 1, IDEMPOTENT)
    assert [name for name, _ in seen] == [
        "error.occurred", "producer.reload", "buffer.purged", "producer.reloaded",
    ]
    reported = seen[0][1]
    assert (reported["type"], reported["attempt"], reported["error"]) == (
        "librdkafka.idempotent_fatal_error", 1, EPOCH,
    )
    assert seen[1][1]["caller"] is producer and seen[1][1]["attempt"] == 1
    assert old.closed == [(0, True)]  # the fatal client's queue is dropped, not flushed
    assert producer.messages == ()
    assert producer.status is Status.CONFIGURED
    assert producer.client is not old
    assert _fresh_clients == [0.25]
    producer.close()


def test_idempotent_reload_leaves_a_client_that_is_not_fatal(_fresh_clients):
    producer = make()
    seen = record(producer)
    client = producer.client
    producer._reload_after_fatal(EPOCH, 1, IDEMPOTENT)
    assert [name for name, _ in seen] == ["error.occurred"]
    assert producer.client is client and client.closed == []
    assert len(_fresh_clients) == 1  # the backoff still applies
    producer.close()


def test_transaction_reload_flushes_the_old_client_and_reports_nothing_first(_fresh_clients):
    producer = make(transactional=True, wait_backoff_on_transaction_fatal_error=40)
    seen = record(producer)
    old = producer.client  # not in librdkafka's fatal state: rebuilt all the same
    producer._reload_after_fatal(FENCED, 2, TRANSACTION)
    assert [name for name, _ in seen] == ["producer.reload", "buffer.purged", "producer.reloaded"]
    assert seen[0][1]["attempt"] == 2 and seen[0][1]["error"] is FENCED
    assert old.closed == [(5_000, True)]  # up to max_wait_timeout for what it still queues
    assert producer.status is Status.CONFIGURED
    assert _fresh_clients == [0.04]
    producer.close()


# --- both callers go through it ------------------------------------------------------------------


def spy(producer: Producer) -> list[tuple[str, int, Any]]:
    calls: list[tuple[str, int, Any]] = []
    real = producer._reload_after_fatal

    def reload(error: KafkaError, attempt: int, policy: Any = IDEMPOTENT) -> None:
        calls.append((error.code, attempt, policy))
        real(error, attempt, policy)

    producer._reload_after_fatal = reload  # type: ignore[method-assign]
    return calls


def test_a_transaction_error_reloads_through_the_one_path_until_its_attempt_limit():
    producer = make(
        transactional=True,
        reload_on_transaction_fatal_error=True,
        non_reloadable_errors=[],
        max_attempts_on_transaction_fatal_error=2,
    )
    calls = spy(producer)
    for _ in range(3):
        producer.client  # noqa: B018 - connected: a reload has a client to replace
        transactions.reload_if_needed(producer, FENCED)
    assert calls == [("fenced", 1, TRANSACTION), ("fenced", 2, TRANSACTION)]
    producer.close()


def test_a_transaction_reload_needs_a_kafka_error_and_a_client():
    producer = make(
        transactional=True, reload_on_transaction_fatal_error=True, non_reloadable_errors=[]
    )
    calls = spy(producer)
    transactions.reload_if_needed(producer, FENCED)  # never connected: nothing to reload
    producer.client  # noqa: B018
    transactions.reload_if_needed(producer, RuntimeError("not librdkafka's"))
    assert calls == []
    wrapped = ProduceError("wrapped")
    wrapped.__cause__ = FENCED
    transactions.reload_if_needed(producer, wrapped)
    assert calls == [("fenced", 1, TRANSACTION)]
    producer.close()


def test_an_idempotent_dispatch_reloads_through_the_one_path_and_retries():
    producer = make(reload_on_idempotent_fatal_error=True)
    calls = spy(producer)
    producer.client  # noqa: B018
    FatalClient.failing_produces = 1
    report = producer.produce_sync(topic="t", payload=b"after the reload")
    assert report.error is None
    assert calls == [("invalid_producer_epoch", 1, IDEMPOTENT)]
    assert len(FatalClient.built) == 2
    producer.close()


def test_an_idempotent_dispatch_stops_at_its_attempt_limit():
    producer = make(reload_on_idempotent_fatal_error=True, max_attempts_on_idempotent_fatal_error=2)
    calls = spy(producer)
    producer.client  # noqa: B018
    FatalClient.failing_produces = 10
    with pytest.raises(ProduceError) as raised:
        producer.produce_sync(topic="t", payload=b"never")
    assert raised.value.__cause__ is EPOCH
    assert [attempt for _, attempt, _ in calls] == [1, 2]
    assert all(policy is IDEMPOTENT for _, _, policy in calls)
    producer.close()
