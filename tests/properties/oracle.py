"""An independent reading of the message contract (the public API's message rules, as
docs/usage.md's "Messages" states them, and WaterDrop's), written from the spec and not from
the implementation.

``judge(message)`` says what must happen to a message: VALID (it must be accepted and
arrive byte for byte as ``expected``), INVALID (MessageInvalidError, nothing sent) or EITHER
(the spec does not decide: str/bytes subclasses, tuples where lists are named, bools where
ints are named; if accepted, it must still arrive intact). ``inline_ok`` lists the
librdkafka errors that may refuse a contract-valid message at the call, before anything is
queued (a payload above librdkafka's message.max.bytes; a partition the topic lacks).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

VALID, INVALID, EITHER = "valid", "invalid", "either"
KNOWN = {"topic", "payload", "key", "partition", "partition_key", "timestamp", "headers", "label"}
TOPIC_RE = re.compile(r"\A[A-Za-z0-9_.\-]+\Z")
TOPIC_MAX_LENGTH = 249  # Kafka's limit on a topic name
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
#: librdkafka's message.max.bytes default, minus room for the record overhead
LIBRDKAFKA_LIMIT = 1_000_000 - 512


@dataclass
class Verdict:
    kind: str
    reasons: list[str] = field(default_factory=list)
    inline_ok: set[str] = field(default_factory=set)
    value: bytes | None = None
    key: bytes | None = None
    partition: int | None = None          # None: any
    timestamp: int | None = None          # None: not checked (CreateTime now)
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    label: Any = None

    def worse(self, kind: str, reason: str) -> None:
        self.reasons.append(reason)
        if kind == INVALID or self.kind == INVALID:
            self.kind = INVALID
        elif kind == EITHER:
            self.kind = EITHER


def _utf8(text: str) -> bytes | None:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return None


def _exact(value: Any, *types: type) -> bool:
    return type(value) in types


def _stringish(value: Any, verdict: Verdict, what: str, *, empty_ok: bool) -> bytes | None:
    """str (UTF-8) or bytes; subclasses are EITHER; anything else INVALID."""
    if isinstance(value, (str, bytes)) and not _exact(value, str, bytes):
        verdict.worse(EITHER, f"{what}: a {type(value).__name__} subclass")
    if isinstance(value, str):
        raw = _utf8(value)
        if raw is None:
            verdict.worse(INVALID, f"{what}: not encodable as UTF-8")
            return None
    elif isinstance(value, bytes):
        raw = bytes(value)
    else:
        verdict.worse(INVALID, f"{what}: a {type(value).__name__}")
        return None
    if not raw and not value and not empty_ok:
        verdict.worse(INVALID, f"{what}: empty")
    return raw


def judge(message: Any, topic: str, partitions: int, max_payload: int = 1_000_012) -> Verdict:
    verdict = Verdict(VALID)
    if not isinstance(message, Mapping):
        verdict.worse(INVALID, f"not a mapping: {type(message).__name__}")
        return verdict
    data = dict(message)
    unknown = [k for k in data if not (isinstance(k, str) and k in KNOWN)]
    if unknown:
        verdict.worse(INVALID, f"unknown keys {unknown!r}")
    verdict.label = data.get("label")

    if "topic" not in data:
        verdict.worse(INVALID, "no topic")
    else:
        t = data["topic"]
        if not isinstance(t, str) or not TOPIC_RE.match(t) or len(t) > TOPIC_MAX_LENGTH:
            verdict.worse(INVALID, f"topic {t!r}")
        elif not _exact(t, str):
            verdict.worse(EITHER, "topic: str subclass")
        elif t != topic:
            verdict.worse(INVALID, "the strategies only draw the test topic or invalid ones")

    if "payload" not in data:
        verdict.worse(INVALID, "no payload")
    else:
        payload = data["payload"]
        if payload is None:
            verdict.value = None
        elif isinstance(payload, (bytearray, memoryview)) and not isinstance(payload, bytes):
            try:
                if isinstance(payload, memoryview):
                    if not payload.c_contiguous or payload.format not in ("B", "b", "c"):
                        verdict.worse(EITHER, "memoryview that is not a plain byte buffer")
                    verdict.value = payload.tobytes()
                else:
                    verdict.value = bytes(payload)
            except ValueError:                       # a released memoryview
                verdict.worse(INVALID, "released memoryview")
        else:
            verdict.value = _stringish(payload, verdict, "payload", empty_ok=True)
        if verdict.value is not None:
            if len(verdict.value) > max_payload:
                verdict.worse(INVALID, "payload above max_payload_size")

    for name in ("key", "partition_key"):
        value = data.get(name)
        if value is None:
            continue
        raw = _stringish(value, verdict, name, empty_ok=False)
        if name == "key":
            verdict.key = raw

    if "partition" in data:
        p = data["partition"]
        if isinstance(p, bool):
            verdict.worse(EITHER, "partition: a bool")
            verdict.inline_ok.add("unknown_partition")
        elif not isinstance(p, int) or p < -1 or p > INT32_MAX:
            verdict.worse(INVALID, f"partition {p!r}")
        elif p >= partitions:
            verdict.inline_ok.add("unknown_partition")
        elif p >= 0:
            verdict.partition = p

    ts = data.get("timestamp")
    if ts is not None:
        if isinstance(ts, bool):
            verdict.worse(EITHER, "timestamp: a bool")
        elif isinstance(ts, int):
            if ts < 0 or ts > INT64_MAX:
                verdict.worse(INVALID, f"timestamp {ts} out of range")
            else:
                verdict.timestamp = ts or None   # 0: librdkafka's "now" (see findings)
        elif isinstance(ts, dt.datetime):
            aware = ts if ts.tzinfo is not None else ts.replace(tzinfo=dt.timezone.utc)
            delta = aware - EPOCH
            ms = delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000
            if ms < 0:
                verdict.worse(INVALID, "timestamp before the epoch")
            else:
                verdict.timestamp = ms or None
        else:
            verdict.worse(INVALID, f"timestamp {type(ts).__name__}")

    headers = data.get("headers")
    if headers is not None:
        if not isinstance(headers, dict):
            verdict.worse(INVALID, f"headers: a {type(headers).__name__}")
        else:
            if not _exact(headers, dict):
                verdict.worse(EITHER, "headers: a dict subclass")
            for name, value in headers.items():
                if not isinstance(name, str):
                    verdict.worse(INVALID, f"header name {name!r}")
                    continue
                raw_name = _utf8(name)
                if raw_name is None:
                    verdict.worse(INVALID, "header name not UTF-8")
                    continue
                if isinstance(value, (list, tuple)):
                    if isinstance(value, tuple):
                        verdict.worse(EITHER, "header values in a tuple")
                    items = value
                else:
                    items = [value]
                for item in items:
                    if not isinstance(item, (str, bytes)):
                        verdict.worse(INVALID, f"header value {type(item).__name__}")
                        continue
                    raw = _stringish(item, verdict, "header value", empty_ok=True)
                    if raw is not None:
                        verdict.headers.append((name, raw))
    # librdkafka's message.max.bytes counts the whole record: key and headers too
    size = len(verdict.value or b"") + len(verdict.key or b"") + sum(
        len(n.encode("utf-8", "surrogatepass")) + len(v) + 16 for n, v in verdict.headers)
    if size > LIBRDKAFKA_LIMIT:
        verdict.inline_ok.add("msg_size_too_large")
    return verdict
