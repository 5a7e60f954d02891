"""One scenario of benchmarks/emit_cost.py: a call on N threads, run repeatedly, with what could
have stalled it in each run and the median and best over the runs.

Around each timed window it reads the collector's collections, the calling threads' time
waiting for a CPU and, for ``emit()``, the envelopes the flush thread sent and its CPU share;
the producer's backlog is flushed after the window, untimed. Part of benchmarks/emit_cost.py.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from benchmarks.emit_cost_probes import GcCounter, flush_thread_id, schedstat_ns
from benchmarks.emit_cost_timing import Args, percentiles, run_threads
from producer import MetricsProducer

__all__ = ["QUANTILES", "Scenario"]

QUANTILES = ("p50_us", "p99_us", "p99_9_us", "mean_us")


class Scenario:
    """``call`` on ``len(per_thread)`` threads at once; ``producer`` is the one ``call`` emits to
    (``None`` for the peers), ``gc_counter`` the installed collector counter."""

    def __init__(
        self,
        name: str,
        call: Callable[..., object],
        per_thread: list[list[Args]],
        producer: MetricsProducer | None,
        gc_counter: GcCounter,
    ) -> None:
        self.name = name
        self._call = call
        self._per_thread = per_thread
        self._producer = producer
        self._gc = gc_counter
        self.runs: list[dict[str, float]] = []

    def run(self) -> None:
        before = self._producer.stats() if self._producer is not None else None
        flush_id = flush_thread_id() if self._producer is not None else None
        flush_before = schedstat_ns(flush_id) if flush_id is not None else None
        gc_before = self._gc.snapshot()
        samples, wall_s, emitters_wait_s = run_threads(self._call, self._per_thread)
        gc_after = self._gc.snapshot()
        flush_after = schedstat_ns(flush_id) if flush_id is not None else None
        result = percentiles(samples)
        result["calls_per_s"] = len(samples) / wall_s
        for generation, (b, a) in enumerate(zip(gc_before, gc_after, strict=True)):
            result[f"gc_gen{generation}_collections_while_timed"] = a - b
        if emitters_wait_s is not None:
            # Per second of the window: 0.05 means the calling threads together sat runnable
            # but not running 5% of the time (waiting for a CPU).
            result["callers_runnable_not_running_share"] = emitters_wait_s / wall_s
        if self._producer is not None and before is not None:
            during = self._producer.stats()  # before the untimed flush: sent while timing
            result["envelopes_sent_while_timed"] = during.sent_batches - before.sent_batches
            result["events_sent_while_timed"] = during.sent_events - before.sent_events
            if flush_before is not None and flush_after is not None:
                cpu_s = (flush_after[0] - flush_before[0]) / 1e9
                result["flush_thread_cpu_share_while_timed"] = cpu_s / wall_s
            # Settle the backlog outside the timed window, so the next scenario (a peer's
            # included) does not pay for this one's encoding.
            self._producer.flush(timeout_s=120.0)
        self.runs.append(result)

    def summary(self) -> dict[str, Any]:
        keys = [k for k in self.runs[0] if k != "calls"]
        return {
            "calls": self.runs[0]["calls"],
            "threads": len(self._per_thread),
            "median": {k: statistics.median(r[k] for r in self.runs) for k in keys},
            "best": {k: min(r[k] for r in self.runs) for k in QUANTILES},
            "runs": self.runs,
        }
