"""Counters of the Kafka transport, and their Prometheus view.

The transport bumps plain integers under its lock (:class:`KafkaTransportStats` is a consistent
snapshot); :class:`KafkaTransportCollector` turns a snapshot into metric families at scrape
time. Send latency (hand-over to broker acknowledgement) is a real prometheus-client Histogram.
Everything is registered on the caller's registry, or a private one, never the global registry
implicitly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = [
    "TRANSPORT_COUNTERS",
    "KafkaTransportCollector",
    "KafkaTransportStats",
    "send_latency_histogram",
]


@dataclass(frozen=True, slots=True)
class KafkaTransportStats:
    """A snapshot of the Kafka transport's counters (monotonic except the last four)."""

    accepted_batches: int = 0
    """Envelopes handed to send() (each is acknowledged, spooled or dropped eventually)."""
    accepted_events: int = 0
    sent_batches: int = 0
    """Envelopes acknowledged by the broker (acks=all), live or replayed."""
    sent_events: int = 0
    spooled_batches: int = 0
    """Envelopes written to the spool (broker unreachable, send failed, or in-flight full)."""
    spooled_events: int = 0
    replayed_batches: int = 0
    """Spooled envelopes acknowledged after replay (also counted in ``sent_*``)."""
    replayed_events: int = 0
    dropped_spool_full_batches: int = 0
    """Oldest envelopes evicted from the spool beyond its bounds."""
    dropped_spool_full_events: int = 0
    dropped_rejected_batches: int = 0
    """Envelopes the broker refused for good (poison: too large, not authorised, ...)."""
    dropped_rejected_events: int = 0
    dropped_closed_events: int = 0
    """Events of a memory-only spool still unsent when the transport closed."""
    send_errors_retriable: int = 0
    send_errors_poison: int = 0
    connected: bool = False
    in_flight_bytes: int = 0
    spool_rows: int = 0
    spool_events: int = 0


TRANSPORT_COUNTERS: tuple[str, ...] = tuple(
    name
    for name in KafkaTransportStats.__dataclass_fields__
    if name not in ("connected", "in_flight_bytes", "spool_rows", "spool_events")
    and not name.startswith("dropped_spool_full")
)
"""The counters the transport keeps itself (the spool keeps its own drop counts)."""


_COUNTERS = (
    ("accepted", "Envelopes handed to the Kafka transport"),
    ("sent", "Envelopes acknowledged by the broker"),
    ("spooled", "Envelopes written to the local spool"),
    ("replayed", "Spooled envelopes acknowledged after replay"),
)


def send_latency_histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram(
        "pwm_producer_kafka_send_latency_seconds",
        "Time from hand-over to broker acknowledgement, per envelope",
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        registry=registry,
    )


class KafkaTransportCollector(Collector):
    """Exposes one transport's stats; ``snapshot`` is its ``stats`` method."""

    def __init__(self, snapshot: Callable[[], KafkaTransportStats]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        stats = self._snapshot()
        for name, doc in _COUNTERS:
            batches = CounterMetricFamily(f"pwm_producer_kafka_{name}_batches", doc)
            batches.add_metric([], getattr(stats, f"{name}_batches"))
            yield batches
            events = CounterMetricFamily(f"pwm_producer_kafka_{name}_events", f"{doc} (events)")
            events.add_metric([], getattr(stats, f"{name}_events"))
            yield events
        dropped = CounterMetricFamily(
            "pwm_producer_kafka_dropped_events", "Events dropped, by reason", labels=["reason"]
        )
        dropped.add_metric(["spool_full"], stats.dropped_spool_full_events)
        dropped.add_metric(["rejected"], stats.dropped_rejected_events)
        dropped.add_metric(["closed"], stats.dropped_closed_events)
        yield dropped
        errors = CounterMetricFamily(
            "pwm_producer_kafka_send_errors", "Failed sends, by kind", labels=["kind"]
        )
        errors.add_metric(["retriable"], stats.send_errors_retriable)
        errors.add_metric(["poison"], stats.send_errors_poison)
        yield errors
        yield GaugeMetricFamily(
            "pwm_producer_kafka_connected",
            "1 while envelopes go straight to the broker",
            value=1.0 if stats.connected else 0.0,
        )
        yield GaugeMetricFamily(
            "pwm_producer_kafka_in_flight_bytes",
            "Envelope bytes awaiting acknowledgement",
            value=stats.in_flight_bytes,
        )
        yield GaugeMetricFamily(
            "pwm_producer_kafka_spool_rows",
            "Envelopes waiting in the spool",
            value=stats.spool_rows,
        )
        yield GaugeMetricFamily(
            "pwm_producer_kafka_spool_events",
            "Events waiting in the spool",
            value=stats.spool_events,
        )
