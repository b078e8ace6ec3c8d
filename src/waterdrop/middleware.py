"""Middleware: callables ``message -> message`` run once per message before validation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Step = Callable[[dict[str, Any]], dict[str, Any]]


class Middleware:
    """An ordered chain; an empty chain costs nothing on the hot path."""

    def __init__(self) -> None:
        self.steps: list[Step] = []

    def __bool__(self) -> bool:
        return bool(self.steps)

    def append(self, step: Step) -> None:
        self.steps.append(step)

    def prepend(self, step: Step) -> None:
        self.steps.insert(0, step)

    def run(self, message: dict[str, Any]) -> dict[str, Any]:
        for step in self.steps:
            message = step(message)
        return message

    def run_many(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self.run(message) for message in messages]
