"""The probes benchmarks/emit_cost.py uses to say what could have stalled the timed calls.

They run on real threads and the real collector; each is a few milliseconds.
"""

from __future__ import annotations

import gc
import sys
import threading
import time

import pytest

from benchmarks.emit_cost_peers import spin_call, spin_iterations
from benchmarks.emit_cost_probes import GcCounter, schedstat_ns
from benchmarks.emit_cost_timing import OUTCOMES, least_median_ns, run_threads

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="schedstat is Linux's")


@linux_only
def test_schedstat_counts_a_busy_threads_cpu_time() -> None:
    spin_s = 0.05
    readings: list[tuple[int, int] | None] = []

    def busy() -> None:
        me = threading.get_native_id()
        readings.append(schedstat_ns(me))
        deadline = time.thread_time() + spin_s
        while time.thread_time() < deadline:
            pass
        readings.append(schedstat_ns(me))

    thread = threading.Thread(target=busy)
    thread.start()
    thread.join()
    before, after = readings
    assert before is not None
    assert after is not None
    assert after[0] - before[0] >= spin_s * 1e9 * 0.9  # on-CPU time covers the spin
    assert after[1] >= before[1]


def test_schedstat_of_an_unknown_thread_is_none() -> None:
    assert schedstat_ns(2**31 - 1) is None


def test_gc_counter_counts_collections_per_generation_until_removed() -> None:
    counter = GcCounter()
    try:
        before = counter.snapshot()
        gc.collect(0)
        gc.collect(2)
        gc.collect(2)
        after = counter.snapshot()
    finally:
        counter.remove()
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 0, 2]
    gc.collect(1)
    assert counter.snapshot() == after


def test_run_threads_times_every_call_of_every_thread() -> None:
    calls: list[str] = []
    args = [("pool-a", "eu", "p" * 32, OUTCOMES[0], 1.0, 200, 10, 20)] * 50

    def call(pool: str, **_: object) -> None:
        calls.append(pool)

    samples, wall_s, waiting_s = run_threads(call, [args, args, args])
    assert len(samples) == len(calls) == 150
    assert all(s > 0 for s in samples)
    assert wall_s > 0
    if sys.platform == "linux":
        assert waiting_s is not None
        assert waiting_s >= 0


def test_the_floor_spin_takes_emits_arguments_and_lasts_longer_with_more_iterations() -> None:
    args = [("pool-a", "eu", "p" * 32, OUTCOMES[0], 1.0, 200, 10, 20)] * 2_000
    assert spin_call(10)(*args[0]) is None
    short_ns = least_median_ns(spin_call(0), args)
    long_ns = least_median_ns(spin_call(2_000), args)
    assert long_ns > short_ns + 2_000  # 2,000 loop iterations take far more than 1 ns each


def test_spin_iterations_grow_with_the_target() -> None:
    args = [("pool-a", "eu", "p" * 32, OUTCOMES[0], 1.0, 200, 10, 20)] * 2_000
    assert spin_iterations(0.0, args) == 0
    assert spin_iterations(50_000.0, args) > spin_iterations(5_000.0, args) > 0
