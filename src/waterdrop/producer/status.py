"""The producer lifecycle."""

from __future__ import annotations

import enum


class Status(enum.Enum):
    """WaterDrop's lifecycle: initial -> configured -> connected -> ... -> closing -> closed."""

    INITIAL = "initial"
    CONFIGURED = "configured"
    CONNECTED = "connected"
    DISCONNECTING = "disconnecting"
    DISCONNECTED = "disconnected"
    CLOSING = "closing"
    CLOSED = "closed"

    @property
    def active(self) -> bool:
        return self in _ACTIVE

    def __str__(self) -> str:
        return self.value


_ACTIVE = frozenset(
    (Status.CONFIGURED, Status.CONNECTED, Status.DISCONNECTING, Status.DISCONNECTED)
)
