"""WaterDrop's statistics decorator: ``<key>_d`` deltas and ``<key>_fd`` freeze durations."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

#: WaterDrop's defaults: only these keys are decorated ...
DEFAULT_ONLY_KEYS = ("tx", "txretries", "txerrs", "rxerrs")
#: ... and these subtrees are neither decorated nor descended into.
DEFAULT_EXCLUDED_KEYS = ("int_latency", "outbuf_latency", "rtt", "throttle", "req", "toppars", "topics")


class StatisticsDecorator:
    """Adds, next to each decorated numeric key, ``<key>_d`` (change since the previous
    emission; 0 the first time) and ``<key>_fd`` (ms the value has stayed the same; 0 on first
    sight or after a change). Empty ``only_keys`` means every numeric key."""

    def __init__(
        self,
        only_keys: Iterable[str] | None = DEFAULT_ONLY_KEYS,
        excluded_keys: Iterable[str] | None = DEFAULT_EXCLUDED_KEYS,
    ) -> None:
        self.only_keys = frozenset(only_keys or ())
        self.excluded_keys = frozenset(excluded_keys or ())
        self._previous: dict[str, Any] = {}
        self._changed_at: dict[tuple[str, ...], float] = {}

    def __call__(self, statistics: dict[str, Any]) -> dict[str, Any]:
        now = time.monotonic() * 1000.0
        self._decorate(statistics, self._previous, (), now)
        self._previous = statistics
        return statistics

    def _decorate(
        self, current: dict[str, Any], previous: Any, path: tuple[str, ...], now: float
    ) -> None:
        if not isinstance(previous, dict):
            previous = {}
        additions: dict[str, Any] = {}
        for key, value in current.items():
            if key in self.excluded_keys:
                continue
            if isinstance(value, dict):
                self._decorate(value, previous.get(key), path + (key,), now)
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if self.only_keys and key not in self.only_keys:
                continue
            where = path + (key,)
            before = previous.get(key)
            if isinstance(before, (int, float)) and not isinstance(before, bool):
                delta = value - before
            else:
                delta = 0
            if delta or where not in self._changed_at:
                self._changed_at[where] = now
            additions[f"{key}_d"] = delta
            additions[f"{key}_fd"] = round(now - self._changed_at[where])
        current.update(additions)
