"""Input side of ``waterdrop produce``: KEY=VALUE arguments and input lines made messages.

Kept apart from the click commands so the rules for reading input live in one place:

- ``lines``: every line is one payload, bytes exactly as read minus the trailing ``\\n``.
- ``json``: every non-blank line is one JSON object; see :func:`message_from_json`.

Nothing here talks to Kafka; the message contract itself is checked by the producer.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

#: Fields a JSON input line may set (``label`` is the CLI's own: it names the input line).
JSON_FIELDS = ("topic", "payload", "key", "partition", "partition_key", "timestamp", "headers")


class InputLineError(ValueError):
    """An input line that cannot become a message; the text says why."""


def split_assignment(text: str, what: str) -> tuple[str, str]:
    """``"key=value"`` -> ``("key", "value")``; the value may itself contain ``=``."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ValueError(f"expected {what}=VALUE, got {text!r}")
    return name, value


def parse_settings(items: Iterable[str]) -> dict[str, str]:
    """``-X key=value`` arguments as a librdkafka settings dict (the last one of a key wins)."""
    settings: dict[str, str] = {}
    for item in items:
        key, value = split_assignment(item, "KEY")
        settings[key] = value
    return settings


def parse_headers(items: Iterable[str]) -> dict[str, str | list[str]]:
    """``--header k=v`` arguments; a key given more than once becomes repeated headers."""
    headers: dict[str, str | list[str]] = {}
    for item in items:
        key, value = split_assignment(item, "NAME")
        previous = headers.get(key)
        if previous is None:
            headers[key] = value
        elif isinstance(previous, list):
            previous.append(value)
        else:
            headers[key] = [previous, value]
    return headers


@dataclass
class Defaults:
    """What the command line gives every message; a JSON line may override each field."""

    topic: str
    key: str | None = None
    partition: int | None = None
    headers: dict[str, str | list[str]] = field(default_factory=dict)

    def message(self, payload: bytes | str | None) -> dict[str, Any]:
        message: dict[str, Any] = {"topic": self.topic, "payload": payload}
        if self.key is not None:
            message["key"] = self.key
        if self.partition is not None:
            message["partition"] = self.partition
        if self.headers:
            message["headers"] = {
                k: list(v) if isinstance(v, list) else v for k, v in self.headers.items()
            }
        return message


@dataclass
class Line:
    """One input line: where it came from and the message it became (or why it did not)."""

    source: str
    number: int
    message: dict[str, Any] | None = None
    error: str | None = None

    @property
    def where(self) -> str:
        return f"{self.source}:{self.number}"


def read_lines(stream: IO[bytes]) -> Iterator[bytes]:
    """The lines of a binary stream without their trailing ``\\n`` (nothing else stripped).

    Read line by line, so a pipe is produced while it is still being written.
    """
    for raw in iter(stream.readline, b""):
        yield raw[:-1] if raw.endswith(b"\n") else raw


def lines_from(
    stream: IO[bytes], source: str, fmt: str, defaults: Defaults
) -> Iterator[Line]:
    """Every input line of ``stream`` as a :class:`Line` (JSON mode skips blank lines)."""
    for number, raw in enumerate(read_lines(stream), start=1):
        if fmt == "lines":
            yield Line(source, number, message=defaults.message(raw))
            continue
        if not raw.strip():
            continue
        try:
            yield Line(source, number, message=message_from_json(raw, defaults))
        except InputLineError as error:
            yield Line(source, number, error=str(error))


def _bytes_or_text(value: Any, what: str, *, nullable: bool) -> bytes | str | None:
    if value is None:
        if nullable:
            return None
        raise InputLineError(f"{what} must not be null")
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"base64"} and isinstance(value["base64"], str):
        try:
            return base64.b64decode(value["base64"], validate=True)
        except (binascii.Error, ValueError) as error:
            raise InputLineError(f"{what}: invalid base64 ({error})") from None
    raise InputLineError(
        f'{what} must be a string, {{"base64": "..."}}' + (" or null" if nullable else "")
        + f", not {json.dumps(value)[:60]}"
    )


def _header_value(value: Any, what: str) -> bytes | str | list[bytes | str]:
    if isinstance(value, list):
        out: list[bytes | str] = []
        for item in value:
            converted = _bytes_or_text(item, what, nullable=False)
            assert converted is not None
            out.append(converted)
        return out
    converted = _bytes_or_text(value, what, nullable=False)
    assert converted is not None
    return converted


def _timestamp(value: Any) -> int | datetime.datetime:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return datetime.datetime.fromisoformat(value)
        except ValueError:
            raise InputLineError(f"timestamp {value!r} is not an ISO 8601 date and time") from None
    raise InputLineError("timestamp must be an integer (ms since the epoch) or an ISO 8601 string")


def message_from_json(raw: bytes, defaults: Defaults) -> dict[str, Any]:
    """One JSON input line as a message, over the command line's defaults.

    - ``payload``, ``key``, ``partition_key`` and header values: a string is sent as UTF-8
      text; ``{"base64": "..."}`` is sent as the bytes it decodes to.
    - ``payload: null`` (or no payload) is a tombstone; ``key: null`` / ``partition: null``
      drop the command line's ``--key`` / ``--partition`` for this line.
    - ``headers``: merged over the ``--header`` ones name by name; a value may be a list
      (repeated headers); ``null`` removes that ``--header``.
    - ``timestamp``: ms since the epoch, or an ISO 8601 string (no offset means UTC).
    - ``topic``: overrides ``--topic``.
    """
    try:
        document = json.loads(raw)
    except UnicodeDecodeError as error:
        raise InputLineError(f"not UTF-8 ({error.reason} at byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise InputLineError(f"invalid JSON: {error.msg} (column {error.colno})") from None
    if not isinstance(document, dict):
        raise InputLineError(f"expected a JSON object, got {type(document).__name__}")
    unknown = sorted(set(document) - set(JSON_FIELDS))
    if unknown:
        raise InputLineError(
            f"unknown field(s) {', '.join(map(repr, unknown))}; known: {', '.join(JSON_FIELDS)}"
        )
    message = defaults.message(None)
    if "topic" in document:
        message["topic"] = document["topic"]
    message["payload"] = _bytes_or_text(document.get("payload"), "payload", nullable=True)
    for name in ("key", "partition_key"):
        if name in document:
            value = _bytes_or_text(document[name], name, nullable=True)
            if value is None:
                message.pop(name, None)
            else:
                message[name] = value
    if "partition" in document:
        partition = document["partition"]
        if partition is None:
            message.pop("partition", None)
        elif isinstance(partition, int) and not isinstance(partition, bool):
            message["partition"] = partition
        else:
            raise InputLineError("partition must be an integer or null")
    if document.get("timestamp") is not None:
        message["timestamp"] = _timestamp(document["timestamp"])
    if "headers" in document:
        given = document["headers"]
        if given is None:
            given = {}
        if not isinstance(given, Mapping):
            raise InputLineError("headers must be an object")
        headers = dict(message.get("headers", {}))
        for name, value in given.items():
            if value is None:
                headers.pop(name, None)
            else:
                headers[name] = _header_value(value, f"header {name!r}")
        if headers:
            message["headers"] = headers
        else:
            message.pop("headers", None)
    return message


def describe_contract_errors(errors: Mapping[str, str]) -> str:
    """A MessageInvalidError's ``.errors`` as one line: ``field: reason; field: reason``."""
    return "; ".join(f"{name}: {reason}" for name, reason in errors.items()) or "invalid message"
