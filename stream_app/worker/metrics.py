"""Prometheus exposition of a stream worker's health, throughput and consumer lag.

A custom collector renders :class:`~stream_app.worker.stats.WorkerStats` at scrape time (no
per-record cost). Labels are bounded: ``partition`` (the requests topic's partitions),
``level``, ``reason`` and ``source_host`` (only hosts whose clocks ran ahead, at most 10,000);
never pools, regions or proxies (those are in the window metrics).

=================================================  ===========================================
``proxywhirl_worker_records_total``                records aggregated
``proxywhirl_worker_events_total``                 events aggregated
``proxywhirl_worker_skipped_records_total``        records below the read position (re-reads)
``proxywhirl_worker_dead_letters_total{reason}``   per dead-letter kind (``decode``, ``late``...)
``proxywhirl_worker_clock_skew_events_total``      events ahead of their record, ``{source_host}``
``proxywhirl_worker_consume_errors_total``         records that failed the consume path
``proxywhirl_worker_rejected_rows_total``          rows storage refused for their data
``proxywhirl_worker_flushes_total``                flushes stored (one insert each)
``proxywhirl_worker_cycles_deferred_total``        flush cycles skipped while catching up
``proxywhirl_worker_sink_failures_total``          failed writes (retried)
``proxywhirl_worker_commits_total``                offset commits after stored flushes
``proxywhirl_worker_windows_closed_total{level}``  closed windows (``pool_region``, ``proxy``)
``proxywhirl_worker_paused``                       1 while storage/Kafka is unavailable
``proxywhirl_worker_broker_reachable``             0 when end offsets cannot be read
``proxywhirl_worker_assigned_partitions``          partitions held
``proxywhirl_worker_consumer_lag{partition}``      records behind the end of the partition
``proxywhirl_worker_watermark_delay_seconds``      wall clock - watermark, per partition
``proxywhirl_worker_stored_delay_seconds``         histogram: event time -> stored
``proxywhirl_worker_window_delay_seconds``         histogram: window end -> complete in storage
=================================================  ===========================================
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import get_args

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from stream_app.worker.dead_letter_queue import DeadLetterKind
from stream_app.worker.runtime import StreamWorker
from stream_app.worker.stats import DelayHistogram

__all__ = ["DELAY_BOUNDS_S", "WorkerCollector"]

DELAY_BOUNDS_S: tuple[float, ...] = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 15.0, 30.0, 60.0)
_P = "proxywhirl_worker_"


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(_P + name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(_P + name, doc, value=value)


def _histogram(name: str, doc: str, data: DelayHistogram) -> HistogramMetricFamily:
    bounds_ms = tuple(b * 1000.0 for b in DELAY_BOUNDS_S)
    counts = data.cumulative(bounds_ms)
    buckets = [(f"{b:g}", float(c)) for b, c in zip(DELAY_BOUNDS_S, counts, strict=True)]
    buckets.append(("+Inf", float(data.count)))
    return HistogramMetricFamily(_P + name, doc, buckets=buckets, sum_value=data.sum_ms / 1000.0)


class WorkerCollector(Collector):
    """Renders a worker's stats; register it on the worker's registry."""

    def __init__(self, worker: StreamWorker, *, clock_s: Callable[[], float] = time.time) -> None:
        self._worker = worker
        self._clock_s = clock_s

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        w = self._worker
        s = w.stats
        yield _counter("records", "Records aggregated", s.records)
        yield _counter("events", "Events aggregated", s.events)
        yield _counter(
            "skipped_records", "Records below the read position (already stored)", s.skipped_records
        )
        yield _counter(
            "foreign_records",
            "Records of partitions not held (read again by the owner)",
            s.foreign_records,
        )
        yield _counter("offset_gaps", "Records after skipped offsets", s.offset_gaps)
        yield _counter(
            "repeated_batches",
            "Envelopes skipped as repeats of a recent batch_id",
            s.repeated_batches,
        )
        dead = CounterMetricFamily(
            _P + "dead_letters", "Records sent to the dead-letter topic", labels=["reason"]
        )
        for kind in get_args(DeadLetterKind):
            dead.add_metric([kind], s.dead_letters_by_kind.get(kind, 0))
        yield dead
        skew = CounterMetricFamily(
            _P + "clock_skew_events",
            "Events dead-lettered as clock_skew (ahead of their record time), per source host",
            labels=["source_host"],
        )
        for host, count in sorted(s.clock_skew_by_host.items()):
            skew.add_metric([host], count)
        yield skew
        yield _counter(
            "consume_errors",
            "Records that made the consume path fail (dead-lettered as internal)",
            s.consume_errors,
        )
        yield _counter(
            "rejected_rows",
            "Rows storage refused for their data (dead-lettered; the rest was stored)",
            s.rejected_rows,
        )
        yield _counter("flushes", "Flushes stored (one idempotent insert each)", s.flushes)
        yield _counter(
            "cycles_deferred", "Flush cycles skipped while catching up", s.cycles_deferred
        )
        yield _counter("flush_rows", "Partial-sum rows stored", s.flush_rows)
        yield _counter("sink_failures", "Failed flush writes (retried)", s.sink_failures)
        yield _counter(
            "publish_failures", "Unacknowledged dead letters/windows", s.publish_failures
        )
        yield _counter("commits", "Offset commits after stored flushes", s.commits)
        yield _counter("commit_failures", "Offset commits that failed (retried)", s.commit_failures)
        yield _counter("partitions_lost", "Commits refused after a rebalance", s.partitions_lost)
        closed = CounterMetricFamily(_P + "windows_closed", "Windows closed", labels=["level"])
        closed.add_metric(["pool_region"], s.windows_closed)
        closed.add_metric(["proxy"], s.proxy_windows_closed)
        yield closed
        yield _counter("takeovers", "Partition takeovers after rebalances", s.takeovers)
        yield _counter("restored_windows", "Open windows restored from storage", s.restored_windows)
        yield _counter(
            "abandoned_flushes",
            "Partitions given up without storing (re-read)",
            s.abandoned_flushes,
        )
        yield _gauge("paused", "1 while storage or Kafka is unavailable", float(s.paused))
        yield _gauge("broker_reachable", "0 when Kafka does not answer", float(s.broker_reachable))
        partitions = w.partitions
        yield _gauge("assigned_partitions", "Partitions held", float(len(partitions)))
        lag = GaugeMetricFamily(
            _P + "consumer_lag", "Records behind the end of the partition", labels=["partition"]
        )
        delay = GaugeMetricFamily(
            _P + "watermark_delay_seconds",
            "Wall clock minus the partition's watermark",
            labels=["partition"],
        )
        now_s = self._clock_s()
        for p in partitions:
            if p in w.lag:
                lag.add_metric([str(p)], float(w.lag[p]))
            state = w.partition_state(p)
            if state is not None and state.aggregator.watermark_ms is not None:
                delay.add_metric([str(p)], now_s - state.aggregator.watermark_ms / 1000.0)
        yield lag
        yield delay
        if s.last_flush_wall_ms is not None:
            yield _gauge(
                "last_flush_timestamp_seconds",
                "When a flush was last stored",
                s.last_flush_wall_ms / 1000.0,
            )
        yield _histogram(
            "stored_delay_seconds", "Event time to stored in ClickHouse", s.stored_delay
        )
        yield _histogram(
            "window_delay_seconds", "Window end to the closed window stored", s.window_delay
        )
