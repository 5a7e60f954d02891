"""Counters and gauges of one stream worker (read by the Prometheus collector and tests)."""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.latency_buckets import bucket_key, bucket_value, quantile_from_counts

__all__ = ["DelayHistogram", "WorkerStats"]


@dataclass
class DelayHistogram:
    """Delays in ms, counted in the project's log buckets (1% relative error), with weights."""

    buckets: dict[int, int] = field(default_factory=dict)
    count: int = 0
    sum_ms: float = 0.0

    def observe(self, delay_ms: float, weight: int = 1) -> None:
        delay_ms = max(0.0, delay_ms)
        key = bucket_key(delay_ms)
        self.buckets[key] = self.buckets.get(key, 0) + weight
        self.count += weight
        self.sum_ms += delay_ms * weight

    def quantile(self, q: float) -> float | None:
        return quantile_from_counts(self.buckets, q)

    def cumulative(self, bounds_ms: tuple[float, ...]) -> list[int]:
        """Counts at or below each bound (a Prometheus histogram's buckets)."""
        out = [0] * len(bounds_ms)
        for key, n in self.buckets.items():
            value = bucket_value(key)
            for i, bound in enumerate(bounds_ms):
                if value <= bound:
                    out[i] += n
        return out


@dataclass
class WorkerStats:
    """Counters (never reset) and gauges of a :class:`~stream_app.worker.runtime.StreamWorker`."""

    records: int = 0
    events: int = 0
    skipped_records: int = 0
    """Records below a partition's read position: stored already or delivered twice."""
    offset_gaps: int = 0
    """Records that skipped offsets (retention removed them, or a transactional producer)."""
    foreign_records: int = 0
    """Records of partitions this worker does not hold (any more): read again by their owner."""
    repeated_batches: int = 0
    """Envelopes skipped because the same batch_id was just seen (a producer's replay)."""
    dead_letters: int = 0
    decode_errors: int = 0
    late_events: int = 0
    dead_letters_by_kind: dict[str, int] = field(default_factory=dict)
    """Dead letters per kind (``decode``, ``empty``, ``late``, ``clock_skew``, ``too_old``,
    ``internal``, ``rejected``)."""
    consume_errors: int = 0
    """Records that made the consume path fail (dead-lettered as ``internal``)."""
    clock_skew_by_host: dict[str, int] = field(default_factory=dict)
    """Events dead-lettered as ``clock_skew`` per source host (bounded; the health alert
    names the hosts whose count grows)."""
    rejected_rows: int = 0
    """Rows storage refused for their data (dead-lettered; the rest of the flush was stored)."""
    flushes: int = 0
    flush_rows: int = 0
    sink_failures: int = 0
    publish_failures: int = 0
    commits: int = 0
    commit_failures: int = 0
    partitions_lost: int = 0
    windows_closed: int = 0
    proxy_windows_closed: int = 0
    takeovers: int = 0
    restored_windows: int = 0
    abandoned_flushes: int = 0
    rebuilt_flushes: int = 0
    """Flushes rewritten after a takeover found their write interrupted."""
    pauses: int = 0
    paused: bool = False
    broker_reachable: bool = True
    cycles: int = 0
    cycles_deferred: int = 0
    """Flush cycles skipped while catching up (``catch_up_flush_interval_ms``)."""
    last_cycle_wall_ms: int | None = None
    last_flush_wall_ms: int | None = None
    stored_delay: DelayHistogram = field(default_factory=DelayHistogram)
    """Event time -> its flush stored in ClickHouse (per record, weighted by its events)."""
    window_delay: DelayHistogram = field(default_factory=DelayHistogram)
    """Window end -> the closed window complete in ClickHouse."""

    def count_dead_letter(self, kind: str) -> None:
        self.dead_letters += 1
        self.dead_letters_by_kind[kind] = self.dead_letters_by_kind.get(kind, 0) + 1
        if kind == "decode":
            self.decode_errors += 1
        elif kind == "late":
            self.late_events += 1

    def count_clock_skew(self, host: str, *, max_hosts: int = 10_000) -> None:
        """Count one event of ``host`` refused as ``clock_skew``."""
        by_host = self.clock_skew_by_host
        if host not in by_host and len(by_host) >= max_hosts:
            host = "other"
        by_host[host] = by_host.get(host, 0) + 1
