"""Fixtures shared by the whole suite.

The package under test is the *installed* waterdrop (``pip install .``), never ``src/``:
the repo root is on sys.path for the ``tests`` package only, and it has no ``waterdrop``
directory of its own.
"""

from __future__ import annotations

import os
import socket

import pytest

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


def _listening(bootstrap: str, timeout: float = 2.0) -> bool:
    for hostport in bootstrap.split(","):
        host, _, port = hostport.strip().rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout).close()
            return True
        except (OSError, ValueError):
            continue
    return False


def _answers(bootstrap: str, timeout: float = 20.0) -> str | None:
    """None when a Kafka broker answers a metadata request, else the reason it did not."""
    from confluent_kafka.admin import AdminClient

    try:
        AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - any failure means "no broker"
        return f"{type(exc).__name__}: {exc}"
    return None


def pytest_report_header(config):
    import waterdrop

    return (
        f"waterdrop {getattr(waterdrop, '__version__', '?')} from {os.path.dirname(waterdrop.__file__)}"
        f" (librdkafka {waterdrop.librdkafka_version()}); "
        f"KAFKA_BOOTSTRAP_SERVERS={os.environ.get('KAFKA_BOOTSTRAP_SERVERS', '(unset)')}"
    )


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The real broker's bootstrap servers.

    - ``KAFKA_BOOTSTRAP_SERVERS`` set: the broker must answer, else every integration test
      fails (CI always starts one; a silent skip would hide a broken setup).
    - unset: 127.0.0.1:9092 if something answers there, else the integration tests skip.
    """
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if configured:
        reason = _answers(configured)
        if reason is not None:
            pytest.fail(
                f"KAFKA_BOOTSTRAP_SERVERS={configured!r} is set but no Kafka broker answers "
                f"there ({reason}). Start one with `ci/kafka start`, or unset the variable "
                "to skip the integration tests.",
                pytrace=False,
            )
        return configured
    if not _listening(DEFAULT_BOOTSTRAP):
        pytest.skip(
            f"no Kafka broker: KAFKA_BOOTSTRAP_SERVERS is unset and nothing listens on "
            f"{DEFAULT_BOOTSTRAP} (start one with `ci/kafka start`)"
        )
    reason = _answers(DEFAULT_BOOTSTRAP)
    if reason is not None:
        pytest.fail(
            f"something listens on {DEFAULT_BOOTSTRAP} but does not answer as a Kafka "
            f"broker ({reason})",
            pytrace=False,
        )
    return DEFAULT_BOOTSTRAP
