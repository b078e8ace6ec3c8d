"""Reconciling what a producer was told against what the topic holds, by message number.

Messages carry their number as the payload (``b"17"``) and as the label (``17``). After
every handle has resolved, ``reconcile`` reads the topic back with confluent-kafka and
checks the promise: acknowledged means present exactly once at the reported partition and
offset; absent means reported failed (on the handle, with its label); nothing twice; each
partition in production order.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

from tests.reliability.kafka_cluster import read_all
from waterdrop import WaitTimeoutError

#: Error codes for which a message may or may not have been written (KIP-... "possibly
#: persisted"): a failure reported with one of them can still be found in the topic.
POSSIBLY_PERSISTED = {"msg_timed_out", "purge_inflight", "timed_out", "transport",
                      "request_timed_out"}


@dataclass
class Outcome:
    produced: int = 0
    succeeded: dict[int, tuple[int, int]] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    read_back: int = 0
    duplicates: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    failed_but_present: list[int] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"produced={self.produced} succeeded={len(self.succeeded)} failed={len(self.failed)}"
            f" codes={dict(collections.Counter(self.failed.values()))} read_back={self.read_back}"
            f" duplicates={len(self.duplicates)} failed_but_present={len(self.failed_but_present)}"
        )


def resolve_all(handles: Any, deadline_ms: int = 120_000) -> None:
    """Every handle reaches a verdict within ``deadline_ms`` (else: a hang, fail)."""
    pending = []
    for handle in (handles.values() if isinstance(handles, dict) else handles):
        try:
            handle.wait(deadline_ms, False)
        except WaitTimeoutError:
            pending.append(handle.label)
    assert not pending, f"{len(pending)} handles still pending after {deadline_ms} ms: {pending[:10]}"


def reconcile(
    bootstrap: str,
    topic: str,
    handles: Any,
    *,
    allow_failed_present: bool = True,
    allow_duplicates: bool = False,
    deadline_ms: int = 120_000,
    client_config: dict[str, Any] | None = None,
    order_group: Any = None,
) -> Outcome:
    """Check the promise for ``handles``: a list (handle ``i`` carries message number ``i``)
    or a dict {number: handle} (numbers never dispatched are simply absent from it).

    ``allow_duplicates`` is for brokers that cannot deduplicate retries (see the callers):
    a report may then name any of the copies, and order is checked on the first copies.
    Order: numbers must grow along each partition; with ``order_group`` (number -> key, e.g.
    the thread that produced it) only within each group of a partition."""
    resolve_all(handles, deadline_ms)
    numbered = handles if isinstance(handles, dict) else dict(enumerate(handles))
    out = Outcome(produced=len(numbered))
    for i, handle in numbered.items():
        report = handle.wait(0, False)
        assert handle.label == i and report.label == i, f"label of message {i}: {report.label!r}"
        assert report.topic_name == topic
        if report.error is None:
            out.succeeded[i] = (report.partition, report.offset)
        else:
            out.failed[i] = report.error.code

    seen: dict[int, list[tuple[int, int]]] = collections.defaultdict(list)
    per_partition: dict[int, list[int]] = collections.defaultdict(list)
    messages = read_all(bootstrap, topic, client_config=client_config)
    out.read_back = len(messages)
    for message in sorted(messages, key=lambda m: (m.partition(), m.offset())):
        number = int(message.value())
        if allow_duplicates and number in seen:
            # a rewritten retry: where it landed is recorded, order is judged on first copies
            seen[number].append((message.partition(), message.offset()))
            continue
        seen[number].append((message.partition(), message.offset()))
        group = order_group(number) if order_group is not None else None
        per_partition[(message.partition(), group)].append(number)

    out.duplicates = {n: w for n, w in seen.items() if len(w) > 1}
    out.failed_but_present = sorted(n for n in out.failed if n in seen)
    lost = sorted(n for n in out.succeeded if n not in seen)
    misplaced = sorted(
        n for n, where in out.succeeded.items()
        if n in seen and where not in (seen[n] if allow_duplicates else seen[n][:1])
    )
    unreported = sorted(n for n in numbered if n not in seen and n not in out.failed)
    foreign = sorted(n for n in seen if n not in numbered)
    disordered = [p for p, ns in per_partition.items()
                  if any(ns[j] <= ns[j - 1] for j in range(1, len(ns)))]

    assert allow_duplicates or not out.duplicates, f"duplicates: {list(out.duplicates.items())[:10]} ({out})"
    assert not lost, f"acknowledged but absent: {lost[:20]} ({out})"
    assert not misplaced, f"not where the report said: {misplaced[:20]} ({out})"
    assert not unreported, f"absent, never reported failed: {unreported[:20]} ({out})"
    assert not foreign, f"numbers nobody produced: {foreign[:20]}"
    assert not disordered, f"order broken in partition(s) {disordered} ({out})"
    if allow_failed_present:
        odd = [n for n in out.failed_but_present if out.failed[n] not in POSSIBLY_PERSISTED]
        assert not odd, f"failed with a definite error, yet present: {odd[:20]} ({out})"
    else:
        assert not out.failed_but_present, f"failed yet present: {out.failed_but_present[:20]}"
    return out
