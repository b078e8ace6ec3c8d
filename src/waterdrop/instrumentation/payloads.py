"""Event payloads that more than one place emits: built here, once, for every site.

``message.produced_async`` and ``message.produced_sync`` come from the core's dispatch
(waterdrop._core's ProducerBase), from the Python producer's general paths and from the asyncio
producer. Each site asks ``monitor.listening(event)`` first (nothing is built for nobody),
then passes the payload as keywords: ``monitor.instrument(event, **produced_async(...))``.
"""

from __future__ import annotations

import time
from typing import Any


def produced_async(producer_id: Any, message: Any, handle: Any, start: float) -> dict[str, Any]:
    """``message.produced_async``: ``message`` enqueued, ``handle`` its DeliveryHandle."""
    return _produced(producer_id, message, "handle", handle, start)


def produced_sync(producer_id: Any, message: Any, report: Any, start: float) -> dict[str, Any]:
    """``message.produced_sync``: ``message`` delivered, ``report`` its DeliveryReport."""
    return _produced(producer_id, message, "report", report, start)


def _produced(producer_id: Any, message: Any, name: str, outcome: Any,
              start: float) -> dict[str, Any]:
    # ``time``: milliseconds since ``start``, a time.monotonic() reading taken before the
    # dispatch
    return {
        "producer_id": producer_id,
        "message": message,
        name: outcome,
        "time": (time.monotonic() - start) * 1000.0,
    }
