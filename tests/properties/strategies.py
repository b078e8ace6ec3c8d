"""Hypothesis strategies for hostile input: random types, sizes, unicode with lone surrogates,
huge and empty values, wrong nesting.

Each strategy draws mostly plausible values (so the accepted path is exercised hard, and
delivered messages are checked byte for byte) and regularly something that must be refused.
"""

from __future__ import annotations

import array
import collections
import datetime as dt
import types
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

#: librdkafka's default message.max.bytes; max_payload_size's default (1,000,012) is above it.
MESSAGE_MAX_BYTES = 1_000_000
MAX_PAYLOAD = 1_000_012

# Text that includes lone surrogates (not encodable as UTF-8), NULs, astral characters...
any_text = st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=40)
utf8_text = st.text(st.characters(codec="utf-8"), max_size=40)
surrogate_text = st.tuples(utf8_text, st.sampled_from(["\ud800", "\udfff", "\udc80"]), utf8_text).map(
    "".join
)
some_text = st.one_of(utf8_text, utf8_text, any_text, surrogate_text)

#: Values of types nothing in a message accepts as such (the "random types").
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.complex_numbers(),
    st.just(object()),
    st.just(Ellipsis),
    st.just(print),
    st.lists(st.integers(), max_size=3),
    st.tuples(st.integers()),
    st.sets(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just(dt.date(2020, 1, 1)),
    st.just(dt.timedelta(seconds=1)),
    st.just(bytearray(b"ba")),
)


class StrSub(str):
    pass


class BytesSub(bytes):
    pass


def _huge(size: int) -> bytes:
    return b"\xa5" * size


# Payload sizes around every limit: empty, tiny, just under librdkafka's message.max.bytes,
# max_payload_size and one more byte than it.
huge_sizes = st.sampled_from(
    [0, 1, 4096, MESSAGE_MAX_BYTES - 200, MESSAGE_MAX_BYTES + 1, MAX_PAYLOAD, MAX_PAYLOAD + 1]
)


def _released_view() -> memoryview:
    view = memoryview(b"released")
    view.release()
    return view


payloads = st.one_of(
    st.binary(max_size=200),
    st.binary(max_size=200),
    some_text,
    st.none(),
    st.binary(max_size=64).map(bytearray),
    st.binary(max_size=64).map(memoryview),
    st.binary(min_size=4, max_size=64).map(lambda b: memoryview(b)[::2]),       # strided
    st.lists(st.integers(-(2**31), 2**31 - 1), max_size=8).map(
        lambda xs: memoryview(array.array("i", xs))),                            # not bytes
    huge_sizes.map(_huge),
    huge_sizes.map(lambda n: "é" * (n // 2)),
    st.builds(_released_view),
    st.binary(max_size=20).map(BytesSub),
    utf8_text.map(StrSub),
    junk,
)

keys = st.one_of(
    st.binary(max_size=40), some_text, st.none(), st.just(b""), st.just(""),
    st.binary(max_size=10).map(bytearray), utf8_text.map(StrSub), junk,
)

TOPIC_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."


def invalid_topics() -> st.SearchStrategy[Any]:
    """Topics the contract must refuse (the valid one is supplied by the test)."""
    return st.one_of(
        st.just(""),
        some_text.filter(lambda s: any(c not in TOPIC_CHARS for c in s)),
        st.binary(min_size=1, max_size=20),
        utf8_text.map(lambda s: s + " "),
        junk,
    )


partitions = st.one_of(
    st.just(0), st.just(-1), st.just(0), st.just(1),        # 1: beyond a 1-partition topic
    st.integers(min_value=-(2**40), max_value=2**40),
    st.just(2**31 - 1), st.just(2**31), st.just(-2),
    st.just(True), st.just(0.0), st.just("0"), junk,
)

timestamps = st.one_of(
    st.integers(min_value=0, max_value=4_102_444_800_000),   # up to 2100
    st.integers(min_value=-(2**70), max_value=2**70),
    st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2099, 1, 1)),
    st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2099, 1, 1),
                 timezones=st.timezones()),
    st.datetimes(max_value=dt.datetime(1969, 12, 31)),       # before the epoch
    st.just(True), st.floats(), junk,
)

header_values = st.one_of(
    st.binary(max_size=30), some_text,
    st.lists(st.one_of(st.binary(max_size=10), some_text), max_size=4),
    st.tuples(st.binary(max_size=5), utf8_text),
    st.lists(st.lists(st.binary(max_size=3), max_size=2), min_size=1, max_size=2),  # too deep
    st.dictionaries(utf8_text, st.binary(max_size=3), max_size=2),                  # wrong nesting
    st.binary(max_size=5).map(bytearray),
    junk,
)

header_names = st.one_of(utf8_text, utf8_text, some_text, st.binary(max_size=10), st.integers(), st.none())

headers = st.one_of(
    st.dictionaries(header_names, header_values, max_size=6),
    st.dictionaries(utf8_text, st.one_of(st.binary(max_size=30), utf8_text,
                                         st.lists(st.binary(max_size=8), max_size=3)),
                    max_size=6),
    st.lists(st.tuples(utf8_text, st.binary(max_size=8)), max_size=3),              # KIP-82 list
    st.none(),
    junk,
)

labels = st.one_of(st.none(), st.integers(), some_text, st.just(object()), junk)

unknown_field_names = st.one_of(
    st.sampled_from(["value", "Topic", "topic ", "payloads", "headers_", "offset", "acks"]),
    some_text.filter(lambda s: s not in
                     {"topic", "payload", "key", "partition", "partition_key", "timestamp",
                      "headers", "label"}),
    st.integers(),
)

FIELDS = ("payload", "key", "partition", "partition_key", "timestamp", "headers", "label")
FIELD_STRATEGIES = {
    "payload": payloads,
    "key": keys,
    "partition": partitions,
    "partition_key": keys,
    "timestamp": timestamps,
    "headers": headers,
    "label": labels,
}


class FrozenMapping(Mapping):
    """A read-only Mapping that is not a dict."""

    def __init__(self, data: dict) -> None:
        self._data = dict(data)

    def __getitem__(self, key: Any) -> Any:
        return self._data[key]

    def __iter__(self) -> Any:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


@st.composite
def message_dicts(draw: Any, topic: str) -> dict[Any, Any]:
    """A message as a dict: the valid topic most of the time, each other field present with
    some probability and drawn from its hostile strategy; sometimes a field too many."""
    message: dict[Any, Any] = {}
    if draw(st.integers(0, 9)) < 8:
        message["topic"] = topic
    elif draw(st.booleans()):
        message["topic"] = draw(invalid_topics())
    for name in FIELDS:
        if name == "payload":
            present = draw(st.integers(0, 19)) < 19       # missing payload: rare but refused
        else:
            present = draw(st.booleans())
        if present:
            message[name] = draw(FIELD_STRATEGIES[name])
    if draw(st.integers(0, 14)) == 0:
        message[draw(unknown_field_names)] = draw(junk)
    return message


@st.composite
def containers(draw: Any, topic: str) -> Any:
    """What is passed as "the message": a dict, another Mapping, or the wrong thing."""
    body = draw(message_dicts(topic))
    kind = draw(st.integers(0, 19))
    if kind < 15:
        return body
    if kind == 15:
        return collections.OrderedDict(body)
    if kind == 16:
        return types.MappingProxyType(body)
    if kind == 17:
        return FrozenMapping(body)
    if kind == 18:
        return list(body.items())                                   # wrong nesting
    return draw(st.one_of(st.just([body]), st.just((body,)), junk))  # wrong nesting / type
