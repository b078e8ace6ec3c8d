"""Instrumentation: the event bus (Monitor), WaterDrop's closed list of events."""

from waterdrop.instrumentation.monitor import (
    CLASS_EVENTS,
    EVENTS,
    Event,
    EventNotRegisteredError,
    Monitor,
)

__all__ = ["CLASS_EVENTS", "EVENTS", "Event", "EventNotRegisteredError", "Monitor"]
