"""TLS and SASL/SCRAM-SHA-512 end to end, against a real broker of this module's own.

ci/kafka starts one node with extra listeners (``--listener``), its SCRAM user created at
format time (``--add-scram``), and certificates made by openssl in the test (tls.py):

    TLS       SSL, server certificate for 127.0.0.1 (hostname verified by the client)
    MTLS      SSL with ssl.client.auth=required (client key encrypted: ssl.key.password)
    BADHOST   SSL, a certificate for another host name (must be refused by the client)
    SCRAMSSL  SASL_SSL, SCRAM-SHA-512
    SCRAM     SASL_PLAINTEXT, SCRAM-SHA-512

Over each good listener waterdrop produces and confluent-kafka reads back through the same
listener; the bad ones fail in the open (error.occurred, a failed handle), never silently,
and never with a secret in the message.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from typing import Any

import pytest

from tests.helpers import close_within
from tests.reliability.kafka_cluster import KafkaCluster, create_topic, read_all
from tests.reliability.report import record
from tests.reliability.tls import Certificates, make_certificates
from waterdrop import ConfigurationInvalidError, ProduceError, Producer
from waterdrop.instrumentation import CLASS_EVENTS, EVENTS

pytestmark = pytest.mark.timeout(300)

USER = "alice"
COUNT = 500


@pytest.fixture(scope="module")
def secure(tmp_path_factory):
    base = tmp_path_factory.mktemp("secure")
    certs = make_certificates(str(base / "certs"))
    password = "scram-" + secrets.token_hex(12)
    config: dict[str, str] = {}
    for listener, keystore in (("tls", certs.broker_keystore), ("mtls", certs.broker_keystore),
                               ("scramssl", certs.broker_keystore),
                               ("badhost", certs.wrong_host_keystore)):
        config[f"listener.name.{listener}.ssl.keystore.type"] = "PEM"
        config[f"listener.name.{listener}.ssl.keystore.location"] = keystore
        config[f"listener.name.{listener}.ssl.key.password"] = certs.key_password
    config["listener.name.mtls.ssl.client.auth"] = "required"
    config["listener.name.mtls.ssl.truststore.type"] = "PEM"
    config["listener.name.mtls.ssl.truststore.location"] = certs.ca
    for listener in ("scramssl", "scram"):
        config[f"listener.name.{listener}.sasl.enabled.mechanisms"] = "SCRAM-SHA-512"
        config[f"listener.name.{listener}.scram-sha-512.sasl.jaas.config"] = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        )
    cluster = KafkaCluster(
        str(base / "state"),
        brokers=1,
        config=config,
        listeners=["TLS:SSL", "MTLS:SSL", "BADHOST:SSL", "SCRAMSSL:SASL_SSL",
                   "SCRAM:SASL_PLAINTEXT"],
        scram=[f"SCRAM-SHA-512=[name={USER},password={password}]"],
    )
    cluster.start()
    try:
        yield cluster, certs, password
    finally:
        cluster.stop()


def client_settings(cluster: KafkaCluster, certs: Certificates, password: str,
                    listener: str) -> dict[str, Any]:
    """What a user puts in ``kafka=`` for each listener (also what docs/security.md shows)."""
    bootstrap = cluster.listener_bootstrap(listener)
    tls = {"ssl.ca.location": certs.ca, "ssl.endpoint.identification.algorithm": "https"}
    scram = {"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": USER, "sasl.password": password}
    return {
        "TLS": {"bootstrap.servers": bootstrap, "security.protocol": "ssl", **tls},
        "MTLS": {"bootstrap.servers": bootstrap, "security.protocol": "ssl", **tls,
                 "ssl.certificate.location": certs.client_cert,
                 "ssl.key.location": certs.client_key,
                 "ssl.key.password": certs.client_key_password},
        "BADHOST": {"bootstrap.servers": bootstrap, "security.protocol": "ssl", **tls},
        "SCRAMSSL": {"bootstrap.servers": bootstrap, "security.protocol": "sasl_ssl", **tls,
                     **scram},
        "SCRAM": {"bootstrap.servers": bootstrap, "security.protocol": "sasl_plaintext",
                  **scram},
    }[listener]


def produce_and_read_back(settings: dict[str, Any], topic: str) -> list[Any]:
    producer = Producer(kafka=dict(settings), max_wait_timeout=60_000)
    try:
        handles = [producer.produce_async(topic=topic, payload=f"m{i}", key=f"k{i}", label=i)
                   for i in range(COUNT)]
        handles.append(producer.produce_sync(topic=topic, payload="sync", label=COUNT))
        reports = [h.wait(60_000) for h in handles]
    finally:
        close_within(producer)
    assert [r.label for r in reports] == list(range(COUNT + 1))
    # the reader uses the same listener and the same credentials (librdkafka property names)
    reader = {k: v for k, v in settings.items() if k != "bootstrap.servers"}
    messages = read_all(settings["bootstrap.servers"], topic, client_config=reader)
    assert sorted(m.value() for m in messages) == sorted(
        [f"m{i}".encode() for i in range(COUNT)] + [b"sync"])
    assert {(r.partition, r.offset) for r in reports} == {
        (m.partition(), m.offset()) for m in messages}
    return messages


@pytest.mark.parametrize("listener", ["TLS", "MTLS", "SCRAMSSL", "SCRAM"])
def test_produce_and_read_back_over_each_secure_listener(secure, listener):
    cluster, certs, password = secure
    topic = create_topic(cluster.bootstrap, 1, 1)
    messages = produce_and_read_back(client_settings(cluster, certs, password, listener), topic)
    print(f"\n[{listener}] {len(messages)} messages produced and read back over "
          f"{cluster.info()['listener_protocols'][listener]}")


def _failing_producer(settings: dict[str, Any]) -> tuple[Producer, list[Any]]:
    errors: list[Any] = []
    producer = Producer(kafka={**settings, "message.timeout.ms": 5_000},
                        max_wait_timeout=60_000)
    producer.monitor.subscribe("error.occurred", errors.append)
    return producer, errors


def _wait_for_error(errors: list[Any], code: str, timeout: float = 60.0) -> Any:
    done = threading.Event()
    found: list[Any] = []

    def check() -> bool:
        for event in list(errors):
            error = event["error"]
            if getattr(error, "code", None) == code:
                found.append(event)
                return True
        return False

    import time

    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, f"no {code} error in {[str(e['error']) for e in errors]}"
        done.wait(0.05)
    return found[0]


def test_a_certificate_for_another_host_is_refused(secure):
    cluster, certs, password = secure
    topic = create_topic(cluster.bootstrap, 1, 1)
    producer, errors = _failing_producer(client_settings(cluster, certs, password, "BADHOST"))
    try:
        handle = producer.produce_async(topic=topic, payload=b"never", label="badhost-1")
        report = handle.wait(60_000, False)
        assert report.error.code == "msg_timed_out" and report.label == "badhost-1"
        event = _wait_for_error(errors, "ssl")
        assert "certificate verify failed" in str(event["error"])
    finally:
        close_within(producer, force=True)
    assert read_all(cluster.bootstrap, topic) == []
    # the same CA, with hostname verification off, is accepted: the refusal was the host name
    relaxed = {**client_settings(cluster, certs, password, "BADHOST"),
               "ssl.endpoint.identification.algorithm": "none"}
    produce_and_read_back(relaxed, create_topic(cluster.bootstrap, 1, 1))


def test_a_broker_signed_by_an_unknown_ca_is_refused(secure):
    cluster, certs, password = secure
    settings = client_settings(cluster, certs, password, "TLS")
    settings["ssl.ca.location"] = certs.client_cert  # a certificate, but not the CA's
    producer, errors = _failing_producer(settings)
    try:
        report = producer.produce_async(topic="never", payload=b"x", label="ca").wait(60_000, False)
        assert report.error.code == "msg_timed_out" and report.label == "ca"
        assert "certificate verify failed" in str(_wait_for_error(errors, "ssl")["error"])
    finally:
        close_within(producer, force=True)


def test_mutual_tls_without_a_client_certificate_is_refused(secure):
    cluster, certs, password = secure
    settings = client_settings(cluster, certs, password, "MTLS")
    for key in ("ssl.certificate.location", "ssl.key.location", "ssl.key.password"):
        settings.pop(key)
    producer, errors = _failing_producer(settings)
    try:
        report = producer.produce_async(topic="never", payload=b"x").wait(60_000, False)
        assert report.error.code == "msg_timed_out"
        assert errors, "the refused handshake was not reported"
    finally:
        close_within(producer, force=True)


def test_a_wrong_client_key_password_is_a_configuration_error_without_the_password(secure):
    cluster, certs, password = secure
    wrong = "not-the-key-password-" + secrets.token_hex(6)
    settings = {**client_settings(cluster, certs, password, "MTLS"), "ssl.key.password": wrong}
    producer = Producer(kafka=settings)
    try:
        with pytest.raises(ConfigurationInvalidError) as info:
            producer.produce_sync(topic="never", payload=b"x")
        text = f"{info.value!r} {info.value}"
        assert wrong not in text and certs.client_key_password not in text
        print(f"\n[wrong ssl.key.password] {type(info.value).__name__}: {info.value}")
    finally:
        close_within(producer, force=True)


@pytest.mark.parametrize("listener", ["SCRAMSSL", "SCRAM"])
def test_a_wrong_scram_password_fails_in_the_open_without_the_password(secure, listener):
    cluster, certs, password = secure
    wrong = "wrong-" + secrets.token_hex(8)
    settings = {**client_settings(cluster, certs, password, listener), "sasl.password": wrong}
    producer, errors = _failing_producer(settings)
    try:
        with pytest.raises(ProduceError) as info:
            producer.produce_sync(topic="never", payload=b"x", label="auth")
        assert info.value.__cause__.code == "msg_timed_out"
        event = _wait_for_error(errors, "authentication")
        assert "invalid credentials" in str(event["error"]).lower() or "authentication" in str(
            event["error"]).lower()
        for text in [repr(info.value), str(info.value), repr(producer)] + [
                f"{e['error']!r} {e['error']}" for e in errors]:
            assert wrong not in text and password not in text
    finally:
        close_within(producer, force=True)


# --- secrets never leak ---------------------------------------------------------------------

#: Every librdkafka property that carries a secret (librdkafka flags them _RK_SENSITIVE; the
#: other flagged ones, sasl.username, ssl.ca.pem and the *.location paths, are not secrets).
SECRET_PROPERTIES = (
    "sasl.password",
    "ssl.key.password",
    "ssl.key.pem",
    "ssl.keystore.password",
    "sasl.oauthbearer.config",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.assertion.private.key.passphrase",
    "sasl.oauthbearer.assertion.private.key.pem",
)


class Capture(logging.Handler):
    """Every log record of every logger, formatted, with its arguments' reprs."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))
        self.texts.append(repr(record.args))


class Scanner:
    """Collects every text a user may see: logs (waterdrop's LoggerListener with messages,
    librdkafka's own debug log), every event of the producer and of waterdrop.monitor
    (repr and str of the event and of each payload value), reprs, error messages."""

    def __init__(self) -> None:
        import waterdrop

        self.texts: list[str] = []
        self.handler = Capture()
        self.root = logging.getLogger()
        self.old_level = self.root.level
        self.root.addHandler(self.handler)
        self.root.setLevel(logging.DEBUG)
        self.global_monitor = waterdrop.monitor
        self._global = []
        for name in CLASS_EVENTS:
            fn = self._record
            self.global_monitor.subscribe(name, fn)
            self._global.append((name, fn))

    def _record(self, event: Any) -> None:
        self.texts.append(repr(event))
        self.texts.append(str(event))
        for key, value in event.payload.items():
            self.texts.append(f"{key}={value!r} {value}")

    def watch(self, producer: Producer) -> None:
        from waterdrop.instrumentation import LoggerListener

        for name in EVENTS:
            producer.monitor.subscribe(name, self._record)
        producer.monitor.subscribe(LoggerListener(logging.getLogger("waterdrop.scan"),
                                                  log_messages=True))

    def add(self, *texts: Any) -> None:
        self.texts.extend(f"{t!r} {t}" for t in texts)

    def close(self) -> list[str]:
        self.root.removeHandler(self.handler)
        self.root.setLevel(self.old_level)
        for name, fn in self._global:
            unsubscribe = getattr(self.global_monitor, "unsubscribe", None)
            if unsubscribe is not None:
                unsubscribe(fn)
        return self.texts + self.handler.texts

    @staticmethod
    def leaks(texts: list[str], secrets_: dict[str, str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for name, secret in secrets_.items():
            hits = [t[:300] for t in texts if secret in t]
            if hits:
                found[name] = hits[:3]
        return found


def _pkcs12(certs: Certificates, password: str) -> str:
    import subprocess

    path = os.path.join(certs.dir, "client.p12")
    subprocess.run(
        ["openssl", "pkcs12", "-export", "-in", certs.client_cert, "-inkey", certs.client_key,
         "-passin", f"pass:{certs.client_key_password}", "-out", path,
         "-passout", f"pass:{password}"],
        check=True, capture_output=True, timeout=60)
    return path


def test_secrets_never_appear_in_logs_reprs_events_or_errors(secure):
    """Real credentials in use (SCRAM over TLS with a client certificate whose key is
    encrypted, a PKCS#12 keystore, an OIDC client secret), librdkafka's debug log on, every
    event subscribed and logged: none of the secrets is in any text a user can see."""
    cluster, certs, password = secure
    keystore_password = "p12-" + secrets.token_hex(10)
    oidc_secret = "oidc-" + secrets.token_hex(10)
    keystore = _pkcs12(certs, keystore_password)
    secret_values = {
        "sasl.password": password,
        "ssl.key.password": certs.client_key_password,
        "ssl.keystore.password": keystore_password,
        "sasl.oauthbearer.client.secret": oidc_secret,
        "broker ssl.key.password": certs.key_password,
    }
    scanner = Scanner()
    topic = create_topic(cluster.bootstrap, 1, 1)
    base = client_settings(cluster, certs, password, "SCRAMSSL")
    debug = {"debug": "all", "statistics.interval.ms": 200}
    configurations = {
        # SCRAM over TLS, presenting a client certificate (encrypted key)
        "scram+pem": {**base, **debug,
                      "ssl.certificate.location": certs.client_cert,
                      "ssl.key.location": certs.client_key,
                      "ssl.key.password": certs.client_key_password},
        # mutual TLS from a PKCS#12 keystore
        "mtls+p12": {**client_settings(cluster, certs, password, "MTLS"), **debug,
                     "ssl.keystore.location": keystore,
                     "ssl.keystore.password": keystore_password},
    }
    configurations["mtls+p12"].pop("ssl.certificate.location")
    configurations["mtls+p12"].pop("ssl.key.location")
    configurations["mtls+p12"].pop("ssl.key.password")
    try:
        for name, kafka in configurations.items():
            producer = Producer(kafka=kafka, id=f"scan-{name}")
            scanner.watch(producer)
            stats = threading.Event()
            producer.monitor.subscribe("statistics.emitted", lambda _e: stats.set())
            report = producer.produce_sync(topic=topic, payload=b"secret-scan", label=name)
            scanner.add(report, producer, producer.config, producer.client, producer.tags)
            producer.produce_many_sync([{"topic": topic, "payload": b"x", "label": i}
                                        for i in range(3)])
            assert stats.wait(30), "no statistics.emitted"
            close_within(producer)
            scanner.add(producer)
        # an OIDC client that cannot reach its token endpoint: errors and logs, no secret
        oidc = Producer(kafka={
            "bootstrap.servers": cluster.listener_bootstrap("SCRAMSSL"),
            "security.protocol": "sasl_ssl", "ssl.ca.location": certs.ca,
            "sasl.mechanism": "OAUTHBEARER", "sasl.oauthbearer.method": "oidc",
            "sasl.oauthbearer.client.id": "waterdrop",
            "sasl.oauthbearer.client.secret": oidc_secret,
            "sasl.oauthbearer.token.endpoint.url": "http://127.0.0.1:1/token",
            "message.timeout.ms": 3_000, **debug,
        }, id="scan-oidc")
        scanner.watch(oidc)
        with pytest.raises(ProduceError) as failed:
            oidc.produce_sync(topic=topic, payload=b"x", label="oidc")
        scanner.add(failed.value, failed.value.__cause__, oidc, oidc.config)
        close_within(oidc, force=True)
        # settings refused by the contract or by librdkafka: the error names the culprit only
        for bad in ({**base, "linger.ms": "not-a-number"},
                    {**base, "no.such.property": "x"},
                    {**base, "ssl.key.location": "/nonexistent.key",
                     "ssl.key.password": certs.client_key_password}):
            try:
                Producer(kafka=bad).produce_sync(topic=topic, payload=b"x")
            except Exception as error:  # noqa: BLE001 - every refusal is scanned
                scanner.add(error, error.__cause__, getattr(error, "errors", None))
    finally:
        texts = scanner.close()
    assert any("SASL" in t or "sasl" in t for t in texts), "librdkafka's debug log was not seen"
    assert any("secret-scan" in t for t in texts), "the LoggerListener's lines were not seen"
    leaks = Scanner.leaks(texts, secret_values)
    record("secrets_scan", {"texts_scanned": len(texts), "secrets": len(secret_values),
                            "leaks": sorted(leaks)})
    assert not leaks, f"secrets found in user-visible text: {leaks}"


def _secret_settings(secret: dict[str, str]) -> dict[str, dict[str, Any]]:
    """One realistic configuration per group of secret-bearing properties, each pointing at a
    port where nothing listens (so every one of them fails, and its failure is scanned)."""
    down = {"bootstrap.servers": "127.0.0.1:1", "message.timeout.ms": 1_500,
            "debug": "all", "statistics.interval.ms": 100}
    oidc = {"sasl.mechanism": "OAUTHBEARER", "sasl.oauthbearer.method": "oidc",
            "security.protocol": "sasl_plaintext",
            "sasl.oauthbearer.token.endpoint.url": "http://127.0.0.1:1/token"}
    return {
        "scram": {**down, "security.protocol": "sasl_ssl", "sasl.mechanism": "SCRAM-SHA-512",
                  "sasl.username": "alice", "sasl.password": secret["sasl.password"]},
        "key-password": {**down, "security.protocol": "ssl",
                         "ssl.key.password": secret["ssl.key.password"]},
        "key-pem": {**down, "security.protocol": "ssl", "ssl.key.pem": secret["ssl.key.pem"]},
        "keystore": {**down, "security.protocol": "ssl",
                     "ssl.keystore.location": "/nonexistent/keystore.p12",
                     "ssl.keystore.password": secret["ssl.keystore.password"]},
        "unsecured-jwt": {**down, "security.protocol": "sasl_plaintext",
                          "sasl.mechanism": "OAUTHBEARER",
                          "sasl.oauthbearer.config": secret["sasl.oauthbearer.config"]},
        "oidc-client-secret": {**down, **oidc, "sasl.oauthbearer.client.id": "waterdrop",
                               "sasl.oauthbearer.client.secret":
                                   secret["sasl.oauthbearer.client.secret"]},
        "oidc-jwt-bearer": {
            **down, **oidc,
            "sasl.oauthbearer.grant.type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "sasl.oauthbearer.assertion.algorithm": "RS256",
            "sasl.oauthbearer.assertion.private.key.pem":
                secret["sasl.oauthbearer.assertion.private.key.pem"],
            "sasl.oauthbearer.assertion.private.key.passphrase":
                secret["sasl.oauthbearer.assertion.private.key.passphrase"],
        },
    }


@pytest.mark.parametrize("group", ["scram", "key-password", "key-pem", "keystore",
                                   "unsecured-jwt", "oidc-client-secret", "oidc-jwt-bearer"])
def test_every_secret_bearing_setting_stays_out_of_logs_reprs_events_and_errors(group):
    """No broker needed: each secret-bearing property, set to a unique value, in a producer
    that cannot connect (and, for malformed keys, cannot even start): librdkafka's debug log,
    every event (logged by the LoggerListener too), the reprs of the producer, its config and
    its client, and every error raised are scanned for the value."""
    secret = {name: f"{name.replace('.', '-')}-{secrets.token_hex(10)}"
              for name in SECRET_PROPERTIES}
    # key material looks like key material (PEM armour around the unique secret)
    for name in ("ssl.key.pem", "sasl.oauthbearer.assertion.private.key.pem"):
        secret[name] = ("-----BEGIN ENCRYPTED PRIVATE KEY-----\n" + secret[name] +
                        "\n-----END ENCRYPTED PRIVATE KEY-----\n")
    secret["sasl.oauthbearer.config"] = f"principal=alice extension_token={secrets.token_hex(12)}"
    kafka = _secret_settings(secret)[group]
    in_use = {name: value for name, value in secret.items() if name in kafka}
    assert in_use, group
    scanner = Scanner()
    errors: list[BaseException] = []
    try:
        producer = Producer(kafka=dict(kafka), id=f"scan-{group}", max_wait_timeout=30_000)
        scanner.watch(producer)
        scanner.add(producer, producer.config)
        try:
            producer.produce_sync(topic="scan", payload=b"x", label=group)
        except Exception as error:  # noqa: BLE001 - every failure is scanned
            errors.append(error)
            scanner.add(error, error.__cause__, getattr(error, "errors", None))
        try:
            producer.produce_async(topic="scan", payload=b"y").wait(30_000, False)
        except Exception as error:  # noqa: BLE001
            errors.append(error)
            scanner.add(error, error.__cause__, getattr(error, "errors", None))
        try:
            scanner.add(producer.client)
        except Exception as error:  # noqa: BLE001 - a client that cannot be built: scanned
            errors.append(error)
            scanner.add(error, getattr(error, "errors", None))
        close_within(producer, force=True)
        scanner.add(producer, producer.config)
    finally:
        texts = scanner.close()
    assert errors or any("scan" in t for t in texts), "nothing happened: nothing scanned"
    leaks = Scanner.leaks(texts, in_use)
    print(f"\n[secrets {group}] {len(texts)} texts, {len(errors)} errors: "
          f"{[type(e).__name__ for e in errors]}, leaks: {sorted(leaks)}")
    assert not leaks, f"secrets found in user-visible text: {leaks}"
