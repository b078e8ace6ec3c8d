"""Disconnect a producer that has sent nothing for a while (statistics-driven, as WaterDrop)."""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

from waterdrop.instrumentation import events as ev


class IdleDisconnectorListener:
    """Watches ``txmsgs`` in ``statistics.emitted``; when it has not moved for
    ``disconnect_timeout`` ms, disconnects the producer on a thread of its own (the listener
    runs on the poller thread, which cannot close its own client)."""

    def __init__(self, producer: Any, disconnect_timeout: int = 300_000) -> None:
        self._producer = weakref.ref(producer)
        self.disconnect_timeout = disconnect_timeout
        self._last_txmsgs: int | None = None
        self._last_change = time.monotonic()

    def on_statistics_emitted(self, event: Any) -> None:
        txmsgs = event["statistics"].get("txmsgs")
        now = time.monotonic()
        if txmsgs != self._last_txmsgs:
            self._last_txmsgs = txmsgs
            self._last_change = now
            return
        if (now - self._last_change) * 1000.0 < self.disconnect_timeout:
            return
        self._last_change = now
        producer = self._producer()
        if producer is None or not producer.disconnectable():
            return
        threading.Thread(target=self._disconnect, args=(producer,), daemon=True).start()

    @staticmethod
    def _disconnect(producer: Any) -> None:
        try:
            producer.disconnect()
        except Exception as error:  # noqa: BLE001 - reported, never raised on a thread
            producer.monitor.instrument(
                ev.ERROR_OCCURRED, producer_id=producer.id, error=error,
                type="producer.disconnect.error",
            )
