"""The types of a message, for type checkers: ``Message``, ``Tombstone`` and their fields.

Every method that produces or buffers a message takes a ``Message`` (``topic`` and
``payload`` required), every tombstone method a ``Tombstone`` (``topic``, ``key`` and
``partition`` required, no payload); a single-message method takes the same fields as
keyword arguments too, a batch method an iterable of them. A dict literal passed straight to
a method is checked against it as it stands; a message built first needs the annotation
(``message: Message = {...}``), as for any TypedDict, with its required keys in the literal
(the optional ones may be set afterwards).

These are the types the message contract accepts at run time (``MessageInvalidError``
otherwise), with two exceptions a type cannot express: ``key`` and ``partition_key`` must not
be empty, ``partition`` must be ``-1`` or more. ``headers`` is typed as a ``Mapping`` (so a
``dict[str, str]`` fits) of ``str``, ``bytes`` or sequences of those, but the contract wants a
``dict`` of ``str``/``bytes`` values or of lists or tuples of them.

The single-message methods are overloaded: ``(message: Message, /)`` (``Tombstone`` for the
tombstones), or the fields as keywords with the same required ones, never both.
"""

# The implementations of those overloads (``message=None, /, **fields``) carry
# ``# type: ignore[misc]``: mypy says that such an implementation "does not accept all possible
# parameters" of the keyword overload, which it does (a false positive of mypy's overload check
# with a positional-only parameter that has a default).

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NotRequired, Required, TypedDict

__all__ = ["HeaderValue", "Headers", "Key", "Message", "Payload", "Timestamp", "Tombstone"]

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

    ``topic`` and ``payload`` are required (``payload=None`` is a tombstone; the tombstone
    methods take a ``Tombstone``, which makes sure of the key and partition too). ``label`` is
    never sent: it comes back on the delivery handle and report.
    """

    topic: Required[str]
    payload: Required[Payload]
    key: Key
    partition: int
    partition_key: Key
    timestamp: Timestamp
    headers: Headers | None
    label: Any


class Tombstone(TypedDict, total=False):
    """One tombstone, as ``tombstone_sync``, ``tombstone_many_async``... take it.

    A null payload that deletes ``key`` on a compacted topic: ``topic``, ``key`` and the
    explicit ``partition`` the key lives in are required; ``payload``, if given at all, is
    ``None`` (the tombstone methods set it). A ``Message`` is not a ``Tombstone``: its key and
    partition are optional.
    """

    topic: Required[str]
    key: Required[str | bytes]
    partition: Required[int]
    payload: NotRequired[None]
    timestamp: Timestamp
    headers: Headers | None
    label: Any
