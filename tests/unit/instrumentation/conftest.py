"""Fixtures for the instrumentation tests: producers on the module's MockCluster (from
tests/unit/conftest.py) that are always closed, and a recorder of events."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers import close_within, unique_topic
from waterdrop import Producer

#: Generous bound for something that must happen (a hang detector, not a timing assertion).
DEADLINE_S = 30.0


@pytest.fixture
def topic(cluster) -> str:
    name = unique_topic()
    cluster.create_topic(name, partitions=1)
    return name


@pytest.fixture
def make_producer(cluster) -> Callable[..., Producer]:
    """``make_producer(kafka=None, **settings)``: a producer on the mock cluster (or on the
    ``bootstrap.servers`` given in ``kafka``), closed when the test ends."""
    made: list[Producer] = []

    def make(kafka: dict[str, Any] | None = None, **settings: Any) -> Producer:
        conf = {"bootstrap.servers": cluster.bootstrap_servers}
        conf.update(kafka or {})
        producer = Producer(kafka=conf, **settings)
        made.append(producer)
        return producer

    yield make
    for producer in made:
        close_within(producer, force=True)


@pytest.fixture
def producer(make_producer) -> Producer:
    return make_producer()


class Recorder:
    """Collects events; ``wait_for(name, count)`` blocks until that many arrived."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self._cond = threading.Condition()

    def __call__(self, event: Any) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def named(self, name: str) -> list[Any]:
        with self._cond:
            return [e for e in self.events if e.id == name]

    def ids(self) -> list[str]:
        with self._cond:
            return [e.id for e in self.events]

    def wait_for(
        self,
        name: str,
        count: int = 1,
        where: Callable[[Any], bool] | None = None,
        deadline_s: float = DEADLINE_S,
    ) -> list[Any]:
        def matching() -> list[Any]:
            return [e for e in self.events if e.id == name and (where is None or where(e))]

        with self._cond:
            self._cond.wait_for(lambda: len(matching()) >= count, timeout=deadline_s)
            found = matching()
        assert len(found) >= count, (
            f"expected {count} {name!r} event(s) within {deadline_s} s, got {len(found)}: "
            f"{self.ids()}"
        )
        return found


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def record(monitor: Any, *names: str) -> Recorder:
    """Subscribe a Recorder to ``names`` on ``monitor``."""
    rec = Recorder()
    for name in names:
        monitor.subscribe(name, rec)
    return rec
