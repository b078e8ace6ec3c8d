"""The process-wide monitor (``waterdrop.monitor``): producer.created, producer.configured, ..."""

from waterdrop.instrumentation.monitor import CLASS_EVENTS, Monitor

monitor = Monitor(CLASS_EVENTS)
