"""Prometheus view of a producer's counters, read at scrape time.

The request path only bumps plain integers under its lock; this collector turns a
:class:`producer.stats.ProducerStats` snapshot into metric families when the registry is
collected, so metrics cost nothing per event. It is registered on the registry the caller gives
the producer, or on a private one, never on the global default registry implicitly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from producer.stats import ProducerStats

__all__ = ["ProducerCollector"]

_COUNTERS = (
    ("pwm_producer_emitted_events", "emit() calls with valid arguments", "emitted"),
    ("pwm_producer_sent_events", "Events in envelopes the transport accepted", "sent_events"),
    ("pwm_producer_sent_batches", "Envelopes the transport accepted", "sent_batches"),
    ("pwm_producer_send_errors", "Failed transport send attempts", "send_errors"),
    ("pwm_producer_retries", "Envelopes re-sent after a retriable error", "retries"),
)


class ProducerCollector(Collector):
    """Exposes one producer's stats; ``snapshot`` is its ``stats`` method."""

    def __init__(self, snapshot: Callable[[], ProducerStats]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        stats = self._snapshot()
        for name, doc, attr in _COUNTERS:
            yield CounterMetricFamily(name, doc, value=getattr(stats, attr))
        dropped = CounterMetricFamily(
            "pwm_producer_dropped_events", "Events dropped, by reason", labels=["reason"]
        )
        dropped.add_metric(["buffer_full"], stats.dropped_full)
        dropped.add_metric(["send_failed"], stats.dropped_send)
        dropped.add_metric(["closed"], stats.dropped_closed)
        yield dropped
        rejected = CounterMetricFamily(
            "pwm_producer_rejected_events",
            "emit() calls refused for invalid arguments, by field",
            labels=["field"],
        )
        for field, count in sorted(stats.rejected_by_field.items()):
            rejected.add_metric([field], count)
        yield rejected
        yield GaugeMetricFamily(
            "pwm_producer_buffered_events", "Events held in memory", value=stats.buffered
        )
