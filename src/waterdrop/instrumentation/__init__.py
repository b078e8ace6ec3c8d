"""Instrumentation: the event bus (Monitor), WaterDrop's closed list of events."""

from waterdrop.instrumentation.logger_listener import LoggerListener
from waterdrop.instrumentation.statistics import StatisticsDecorator
from waterdrop.instrumentation.monitor import (
    CLASS_EVENTS,
    EVENTS,
    Event,
    EventNotRegisteredError,
    Monitor,
)

__all__ = [
    "CLASS_EVENTS",
    "EVENTS",
    "Event",
    "EventNotRegisteredError",
    "LoggerListener",
    "Monitor",
    "StatisticsDecorator",
]
