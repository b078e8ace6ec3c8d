"""Test helpers: librdkafka's in-process mock cluster."""

from waterdrop._core import MockCluster

__all__ = ["MockCluster"]
