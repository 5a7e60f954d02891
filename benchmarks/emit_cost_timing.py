"""How benchmarks/emit_cost.py times calls: the arguments, each call timed with
``perf_counter_ns``, all threads calling at once, and the percentiles of the samples.

Every timed call takes ``emit()``'s arguments (:data:`Args`), so emit, its prometheus-client
peer and the floor's spin are timed alike. Part of benchmarks/emit_cost.py.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable

from benchmarks.emit_cost_probes import schedstat_ns
from producer import Outcome

__all__ = [
    "OUTCOMES",
    "Args",
    "arguments",
    "least_median_ns",
    "percentiles",
    "run_threads",
    "time_calls",
    "timer_overhead_ns",
]

OUTCOMES = [Outcome.SUCCESS] * 8 + [Outcome.TIMEOUT, Outcome.HTTP_ERROR]

Args = tuple[str, str, str, Outcome, float, int, int, int]


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    n = len(ordered)

    def at(q: float) -> float:
        return ordered[min(n - 1, int(q * n))] / 1000.0

    return {
        "calls": n,
        "mean_us": statistics.fmean(ordered) / 1000.0,
        "p50_us": at(0.50),
        "p90_us": at(0.90),
        "p99_us": at(0.99),
        "p99_9_us": at(0.999),
        "max_us": ordered[-1] / 1000.0,
    }


def arguments(count: int, proxies: list[str], seed: int) -> list[Args]:
    rng = random.Random(seed)
    pools = [f"pool-{i}" for i in range(8)]
    regions = ["eu", "us", "ap", "sa"]
    return [
        (
            rng.choice(pools),
            rng.choice(regions),
            rng.choice(proxies),
            rng.choice(OUTCOMES),
            rng.lognormvariate(5.0, 1.0),
            200,
            rng.randrange(100, 50_000),
            rng.randrange(100, 2_000),
        )
        for _ in range(count)
    ]


def time_calls(call: Callable[..., object], args: list[Args]) -> list[int]:
    clock = time.perf_counter_ns
    samples = [0] * len(args)
    for i, (pool, region, pid, outcome, latency, status, b_in, b_out) in enumerate(args):
        t0 = clock()
        call(
            pool=pool,
            region=region,
            proxy_id=pid,
            outcome=outcome,
            latency_ms=latency,
            status_code=status,
            bytes_in=b_in,
            bytes_out=b_out,
        )
        samples[i] = clock() - t0
    return samples


def run_threads(
    call: Callable[..., object], per_thread: list[list[Args]]
) -> tuple[list[int], float, float | None]:
    """All threads call at once; returns every sample, the wall time of the whole run and the
    time (s, summed over the threads) the calling threads were runnable but not running."""
    results: list[list[int]] = [[] for _ in per_thread]
    waits: list[int | None] = [None] * len(per_thread)
    start = threading.Barrier(len(per_thread) + 1)

    def work(i: int) -> None:
        me = threading.get_native_id()
        start.wait()
        before = schedstat_ns(me)
        results[i] = time_calls(call, per_thread[i])
        after = schedstat_ns(me)
        if before is not None and after is not None:
            waits[i] = after[1] - before[1]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(per_thread))]
    for t in threads:
        t.start()
    start.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    wall_s = time.perf_counter() - started
    known = [w for w in waits if w is not None]
    wait_s = sum(known) / 1e9 if len(known) == len(waits) else None
    return [s for r in results for s in r], wall_s, wait_s


def least_median_ns(call: Callable[..., object], args: list[Args], tries: int = 3) -> float:
    """The lowest of ``tries`` medians (the least disturbed pass on a shared machine)."""
    return min(statistics.median(time_calls(call, args)) for _ in range(tries))


def timer_overhead_ns() -> float:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(100_000):
        t0 = clock()
        samples.append(clock() - t0)
    return float(statistics.median(samples))
