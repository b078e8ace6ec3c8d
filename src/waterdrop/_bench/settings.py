"""What every part of the harness shares: the librdkafka settings both clients get, the
payload, the topic, the scenario names and the sizes of a full and a ``--quick`` run.

One place for them, so that the scenarios, the child processes and the table all describe the
same run. Imports nothing of waterdrop (see :mod:`waterdrop._bench`).
"""

from __future__ import annotations

import sys
from typing import Any

#: librdkafka settings both clients get, so only the binding differs.
COMMON: dict[str, Any] = {
    "linger.ms": 5,
    "acks": "all",
    "queue.buffering.max.messages": 2_000_000,
    "queue.buffering.max.kbytes": 4_000_000,
    # waterdrop's own default (KAFKA_DEFAULTS), given to confluent-kafka too so that both
    # send with the same socket options
    "socket.nagle.disable": True,
}
#: Keeps messages queued in the client: no batch fills up or lingers out while we look.
#: (message.timeout.ms, 300,000 by default, must stay above linger.ms.)
QUEUED: dict[str, Any] = {
    "linger.ms": 120_000,
    "batch.num.messages": 1_000_000,
    "batch.size": 2_147_483_647,
}
PAYLOAD_SIZE = 100
PAYLOAD = b"x" * PAYLOAD_SIZE
TOPIC = "waterdrop-compare"
SCENARIOS = ("async", "many", "sync", "memory", "flat")

#: Defaults of a full run and of ``--quick`` (a smoke test of the harness, not a measurement).
DEFAULTS: dict[str, Any] = {
    "rounds": 5,
    "messages": 100_000,
    "batch": 10_000,
    "sync_messages": 1_000,
    "inflight": 1_000_000,
    "memory_rounds": 3,
    "flat_unit": 1_000_000,
    "flat_units": 10,
    "broker_warm_up": 500_000,
}
QUICK: dict[str, Any] = {
    "rounds": 2,
    "messages": 20_000,
    "batch": 10_000,
    "sync_messages": 200,
    "inflight": 100_000,
    "memory_rounds": 1,
    "flat_unit": 100_000,
    "flat_units": 4,
    "broker_warm_up": 20_000,
}


def log(*parts: Any) -> None:
    """Progress for the person watching: one line on stderr, at once."""
    print(*parts, file=sys.stderr, flush=True)

