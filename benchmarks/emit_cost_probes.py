"""What could have stalled benchmarks/emit_cost.py's timed calls, read outside the timed calls.

Linux's schedstat per thread (time on a CPU, time runnable but not running), the garbage
collector's collections per generation, and the producer's flush thread to read them for.
Part of benchmarks/emit_cost.py.
"""

from __future__ import annotations

import gc
import threading

__all__ = ["GcCounter", "flush_thread_id", "schedstat_ns"]


def schedstat_ns(native_id: int) -> tuple[int, int] | None:
    """A thread's (on-CPU ns, runnable-but-not-running ns) from Linux's
    ``/proc/self/task/<tid>/schedstat``; ``None`` where that is not available."""
    try:
        with open(f"/proc/self/task/{native_id}/schedstat") as f:
            run_ns, wait_ns, _slices = f.read().split()
        return int(run_ns), int(wait_ns)
    except (OSError, ValueError):
        return None


class GcCounter:
    """Counts the collector's collections per generation while installed."""

    def __init__(self) -> None:
        self.counts = [0] * len(gc.get_count())
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.counts[info["generation"]] += 1

    def snapshot(self) -> list[int]:
        return list(self.counts)

    def remove(self) -> None:
        gc.callbacks.remove(self._on_gc)


def flush_thread_id() -> int | None:
    """The native id of the (only) producer's flush thread, found by its name."""
    for thread in threading.enumerate():
        if thread.name.startswith("pwm-producer-flush-"):
            return thread.native_id
    return None
