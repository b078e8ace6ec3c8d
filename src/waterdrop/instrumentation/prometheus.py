"""Prometheus metrics from a producer's events, on ``prometheus_client``.

Install ``prometheus-client`` (``pip install '.[prometheus]'`` in a checkout of waterdrop
installs it with waterdrop)::

    from waterdrop.instrumentation.prometheus import PrometheusListener

    metrics = PrometheusListener()          # registers on prometheus_client.REGISTRY
    producer.monitor.subscribe(metrics)     # before the first use: statistics are opt-in

One listener serves any number of producers (its metrics can be registered only once per
registry). With the default ``namespace="waterdrop"``:

| metric | type | labels | from |
|---|---|---|---|
| ``waterdrop_messages_produced_total`` | counter | topic | ``message(s).produced_*`` (buffer flushes included) |
| ``waterdrop_messages_acknowledged_total`` | counter | topic | ``message.acknowledged`` |
| ``waterdrop_messages_failed_total`` | counter | topic | ``error.occurred`` ``librdkafka.dispatch_error`` and ``message.purged`` |
| ``waterdrop_errors_total`` | counter | type | every ``error.occurred`` |
| ``waterdrop_delivery_latency_seconds`` | histogram | topic | ``message.acknowledged`` (``delivery_report.latency_ms``) |
| ``waterdrop_queue_size`` | gauge | producer_id | ``statistics.emitted`` ``msg_cnt`` |
| ``waterdrop_broker_rtt_seconds`` | gauge | producer_id, broker | ``statistics.emitted`` ``brokers.*.rtt.avg`` |
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

from waterdrop.instrumentation._extras import missing_extra

try:
    import prometheus_client
    from prometheus_client import Counter, Gauge, Histogram
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise missing_extra(__name__, "prometheus-client", "prometheus") from error

__all__ = ["PrometheusListener"]

#: Delivery latency buckets (seconds): librdkafka batching (linger.ms) up to slow brokers.
DEFAULT_LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)


class PrometheusListener:
    """Counters, a latency histogram and statistics gauges for producers it is subscribed to.

    ``registry``: where to register (``prometheus_client.REGISTRY`` by default);
    ``namespace``: the metric name prefix; ``latency_buckets``: histogram buckets (seconds).
    """

    def __init__(
        self,
        registry: Any = None,
        namespace: str = "waterdrop",
        latency_buckets: Iterable[float] = DEFAULT_LATENCY_BUCKETS,
    ) -> None:
        if registry is None:
            registry = prometheus_client.REGISTRY
        self.registry = registry
        self._monitors: weakref.WeakSet[Any] = weakref.WeakSet()
        common = {"namespace": namespace, "registry": registry}
        self.produced = Counter(
            "messages_produced", "Messages handed to librdkafka", ["topic"], **common
        )
        self.acknowledged = Counter(
            "messages_acknowledged", "Messages the broker acknowledged", ["topic"], **common
        )
        self.failed = Counter(
            "messages_failed", "Messages whose delivery report carried an error (incl. purges)",
            ["topic"], **common,
        )
        self.errors = Counter("errors", "error.occurred events by type", ["type"], **common)
        self.delivery_latency = Histogram(
            "delivery_latency_seconds",
            "From produce to the broker's acknowledgement (librdkafka's message latency)",
            ["topic"], buckets=tuple(latency_buckets), **common,
        )
        self.queue_size = Gauge(
            "queue_size", "Messages in librdkafka's queue, waiting or in flight (msg_cnt)",
            ["producer_id"], **common,
        )
        self.broker_rtt = Gauge(
            "broker_rtt_seconds", "Average broker round-trip time over the last statistics window",
            ["producer_id", "broker"], **common,
        )

    def install(self, producer: Any) -> Any:
        """Subscribe to ``producer``'s monitor (before its first use, for the gauges).

        Returns the producer. A monitor is subscribed to once, however many producers
        share it and however often ``install`` is called.
        """
        if producer.monitor not in self._monitors:
            producer.monitor.subscribe(self)
            self._monitors.add(producer.monitor)
        return producer

    # --- dispatch --------------------------------------------------------------------------------

    def on_message_produced_async(self, event: Any) -> None:
        self.produced.labels(_topic(event["message"])).inc()

    on_message_produced_sync = on_message_produced_async

    def on_messages_produced_async(self, event: Any) -> None:
        counts: dict[str, int] = {}
        for message in event["messages"]:
            topic = _topic(message)
            counts[topic] = counts.get(topic, 0) + 1
        for topic, count in counts.items():
            self.produced.labels(topic).inc(count)

    on_messages_produced_sync = on_messages_produced_async

    # --- delivery (the poller thread) ------------------------------------------------------------

    def on_message_acknowledged(self, event: Any) -> None:
        topic = str(event["topic"])
        self.acknowledged.labels(topic).inc()
        latency = event["delivery_report"].latency_ms
        if latency >= 0:
            self.delivery_latency.labels(topic).observe(latency / 1000.0)

    def on_message_purged(self, event: Any) -> None:
        self.failed.labels(str(event["topic"])).inc()

    def on_error_occurred(self, event: Any) -> None:
        kind = str(event.payload.get("type"))
        self.errors.labels(kind).inc()
        if kind == "librdkafka.dispatch_error":
            self.failed.labels(str(event.payload.get("topic"))).inc()

    # --- statistics ------------------------------------------------------------------------------

    def on_statistics_emitted(self, event: Any) -> None:
        producer_id = str(event["producer_id"])
        statistics = event["statistics"]
        msg_cnt = statistics.get("msg_cnt")
        if msg_cnt is not None:
            self.queue_size.labels(producer_id).set(msg_cnt)
        for broker in (statistics.get("brokers") or {}).values():
            if broker.get("nodeid", -1) == -1:  # a bootstrap entry, not a broker
                continue
            rtt = broker.get("rtt") or {}
            avg = rtt.get("avg")
            if avg is None or not rtt.get("cnt", 1):
                continue
            self.broker_rtt.labels(producer_id, str(broker.get("nodename"))).set(avg / 1e6)


def _topic(message: Any) -> str:
    return str(message.get("topic"))
