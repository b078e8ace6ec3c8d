"""The types of a message, for type checkers: ``Message`` and the types of its fields.

Every method that takes a message takes a ``Message`` (or, for one message, the same fields
as keyword arguments); the batch methods take an iterable of them. A dict literal passed
straight to a method is checked against it as it stands; a message built first needs the
annotation (``message: Message = {...}``), as for any TypedDict.

These are the types the message contract accepts at run time (``MessageInvalidError``
otherwise), with two exceptions a type cannot express: ``key`` and ``partition_key`` must not
be empty, ``partition`` must be ``-1`` or more. ``headers`` is typed as a ``Mapping`` (so a
``dict[str, str]`` fits) of ``str``, ``bytes`` or sequences of those, but the contract wants a
``dict`` of ``str``/``bytes`` values or of lists or tuples of them.

The single-message methods are overloaded: ``(message: Message, /)``, or the fields as
keywords (``topic`` required, and ``payload`` too but for the tombstones), never both.
"""

# The implementations of those overloads (``message=None, /, **fields``) carry
# ``# type: ignore[misc]``: mypy says that such an implementation "does not accept all possible
# parameters" of the keyword overload, which it does (a false positive of mypy's overload check
# with a positional-only parameter that has a default).

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Required, TypedDict

__all__ = ["HeaderValue", "Headers", "Key", "Message", "Payload", "Timestamp"]

Payload = bytes | bytearray | memoryview | str | None
"""``bytes``-like or ``str`` (sent as UTF-8); ``None`` is a tombstone."""
Key = str | bytes | None
"""A message key or partition key: a non-empty ``str`` or ``bytes`` (``None``: no key)."""
Timestamp = int | datetime | None
"""Milliseconds since the epoch, or a ``datetime`` (naive means UTC); ``None``: now."""
HeaderValue = str | bytes | Sequence[str | bytes]
"""One header's value: ``str``, ``bytes``, or several of them (repeated headers, KIP-82)."""
Headers = Mapping[str, HeaderValue]
"""Header names to values (a ``dict`` at run time)."""


class Message(TypedDict, total=False):
    """One message, as ``produce_sync``, ``produce_many_async``, ``buffer``... take it.

    ``topic`` is required; ``payload`` too for every method but the tombstones (which set it
    to ``None`` themselves). ``label`` is never sent: it comes back on the delivery handle and
    report.
    """

    topic: Required[str]
    payload: Payload
    key: Key
    partition: int
    partition_key: Key
    timestamp: Timestamp
    headers: Headers | None
    label: Any
