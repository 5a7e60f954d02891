"""The HTTP ingest's counters on ``/metrics`` (``pwm_ingest_*``), read at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from stream_app.serve.ingestor import IngestCounters

__all__ = ["IngestCollector"]

_COUNTERS = (
    ("bodies", "Request bodies taken to validation"),
    ("events_accepted", "Events accepted (committed to the inbox and queued)"),
    ("events_refused", "Events refused with a reason (kept as dead letters)"),
    ("records_refused", "Bodies refused as a whole (kept as dead letters)"),
    ("duplicates", "Batches answered as duplicates of an accepted one"),
    ("busy", "Bodies answered 429: the pipeline's queue was full"),
    ("replayed_records", "Inbox records replayed at start-up (acknowledged, not yet stored)"),
)


class IngestCollector(Collector):
    """Exposes :class:`IngestCounters` and the inbox backlog."""

    def __init__(self, counters: IngestCounters, pending: Callable[[], int]) -> None:
        self._counters = counters
        self._pending = pending

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        for name, help_text in _COUNTERS:
            yield CounterMetricFamily(
                f"pwm_ingest_{name}", help_text, value=getattr(self._counters, name)
            )
        yield GaugeMetricFamily(
            "pwm_ingest_handoff_records",
            "Records queued for the pipeline and not yet aggregated",
            value=self._pending(),
        )
