"""OAUTHBEARER: librdkafka asks the application for tokens through oauthbearer.token_refresh.

librdkafka's mock cluster cannot do SASL (it answers no SaslHandshake), so these tests stop
at what the client does before and at authentication: the refresh event, the token setters,
and librdkafka going on to authenticate only once it has a token. A produce through a real
OAUTHBEARER listener is in tests/integration/test_instrumentation.py.
"""

from __future__ import annotations

import base64
import json
import threading
import time

import pytest

from tests.unit.instrumentation.conftest import DEADLINE_S, record
from waterdrop import KafkaError

SASL = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "OAUTHBEARER",
        "message.timeout.ms": 1_000}


def unsecured_jws(subject: str = "admin", lifetime_s: int = 3_600) -> str:
    """An unsecured JWS (alg none), what Kafka's default OAUTHBEARER validator accepts."""

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(time.time())
    return f"{part({'alg': 'none'})}.{part({'sub': subject, 'iat': now, 'exp': now + lifetime_s})}."


def expiry_ms(lifetime_s: int = 3_600) -> int:
    return int(time.time() * 1000) + lifetime_s * 1000


class TokenProvider:
    """A token_provider_listener: answers each refresh with a token (or a failure)."""

    def __init__(self, fail: str | None = None) -> None:
        self.fail = fail
        self.events: list = []
        self.threads: list[str] = []
        self.errors: list[BaseException] = []
        self.called = threading.Event()

    def on_oauthbearer_token_refresh(self, event) -> None:
        self.events.append(event)
        self.threads.append(threading.current_thread().name)
        try:
            if self.fail is not None:
                event["bearer"].oauthbearer_set_token_failure(self.fail)
            else:
                event["bearer"].oauthbearer_set_token(
                    token=unsecured_jws(), lifetime_ms=expiry_ms(), principal_name="admin",
                    extensions={"traceId": "123"},
                )
        except BaseException as exc:  # noqa: BLE001 - asserted by the test
            self.errors.append(exc)
        finally:
            self.called.set()


def test_token_provider_listener_setting_gets_the_refresh(make_producer):
    provider = TokenProvider()
    producer = make_producer(kafka=SASL, oauth={"token_provider_listener": provider},
                             max_wait_timeout=5_000)
    errors = record(producer.monitor, "error.occurred")
    producer.produce_async(topic="t", payload=b"x")
    assert provider.called.wait(DEADLINE_S)
    assert provider.errors == []  # the token was accepted by librdkafka
    event = provider.events[0]
    assert set(event.payload) == {"bearer", "caller"}  # as WaterDrop: no producer_id
    assert event["bearer"] is producer
    assert event["caller"] is producer
    assert not provider.threads[0].startswith("Dummy")  # never a librdkafka thread
    # With a token, librdkafka goes on to authenticate: the mock broker cannot, and says so.
    event = errors.wait_for(
        "error.occurred", where=lambda e: e["type"] == "librdkafka.error"
        and e["error"].code == "authentication",
    )[0]
    assert "SASL" in str(event["error"]) and "Failed to acquire" not in str(event["error"])


def test_a_monitor_subscription_before_first_use_gets_the_refresh(make_producer):
    producer = make_producer(kafka=SASL, max_wait_timeout=5_000)
    provider = TokenProvider()
    producer.monitor.subscribe(provider)
    producer.produce_async(topic="t", payload=b"x")
    assert provider.called.wait(DEADLINE_S)
    assert provider.errors == []


def test_set_token_failure_is_reported_by_librdkafka(make_producer):
    provider = TokenProvider(fail="no token for you")
    producer = make_producer(kafka=SASL, oauth={"token_provider_listener": provider},
                             max_wait_timeout=5_000)
    errors = record(producer.monitor, "error.occurred")
    handle = producer.produce_async(topic="t", payload=b"x")
    assert provider.called.wait(DEADLINE_S)
    assert provider.errors == []
    event = errors.wait_for("error.occurred", where=lambda e: "no token for you" in
                            str(e["error"]))[0]
    assert event["type"] == "librdkafka.error"
    assert event["error"].code == "authentication"
    # never authenticated: the message times out
    report = handle.wait(DEADLINE_S * 1000, raise_response_error=False)
    assert report.error.code == "msg_timed_out"


def test_set_token_rejects_an_expired_token(make_producer):
    seen: list[BaseException] = []
    done = threading.Event()

    def refresh(event):
        try:
            event["bearer"].oauthbearer_set_token(
                token=unsecured_jws(), lifetime_ms=expiry_ms(-60), principal_name="admin"
            )
        except BaseException as exc:  # noqa: BLE001 - asserted below
            seen.append(exc)
        finally:
            done.set()

    producer = make_producer(kafka=SASL, max_wait_timeout=5_000)
    producer.monitor.subscribe("oauthbearer.token_refresh", refresh)
    producer.produce_async(topic="t", payload=b"x")
    assert done.wait(DEADLINE_S)
    assert len(seen) == 1 and isinstance(seen[0], KafkaError)
    assert seen[0].code == "invalid_arg"


def test_a_raising_token_listener_is_reported(make_producer):
    def refresh(event):
        raise RuntimeError("token service down")

    producer = make_producer(kafka=SASL, max_wait_timeout=5_000)
    producer.monitor.subscribe("oauthbearer.token_refresh", refresh)
    errors = record(producer.monitor, "error.occurred")
    producer.produce_async(topic="t", payload=b"x")
    event = errors.wait_for("error.occurred", where=lambda e: e["type"] ==
                            "callbacks.oauthbearer_token_refresh.error")[0]
    assert str(event["error"]) == "token service down"


def test_no_refresh_without_a_listener_at_build_time(make_producer, topic):
    """Nobody listens when the client is built: librdkafka is not told the app refreshes
    tokens, and a plaintext producer never sees the event at all."""
    producer = make_producer()
    rec = record(producer.monitor, "oauthbearer.token_refresh")
    producer.produce_sync(topic=topic, payload=b"x")
    assert rec.events == []


def test_setting_a_token_on_a_plaintext_producer_is_refused(producer, topic):
    producer.produce_sync(topic=topic, payload=b"x")
    with pytest.raises(KafkaError):
        producer.oauthbearer_set_token(
            token=unsecured_jws(), lifetime_ms=expiry_ms(), principal_name="admin"
        )
