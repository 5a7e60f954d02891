"""Per-call cost of MetricsProducer.emit() on 1, 4 and 8 threads while the flush thread works.

Each call is timed with perf_counter_ns (the timer's own overhead is measured and reported, not
subtracted). Every emitting thread calls at full rate, all at once, while the producer's flush
thread groups, encodes and sends envelopes through ``InProcessTransport`` to a sink that keeps
only the byte count: the encoding competes for the GIL as it would on a real host. The report
says how many envelopes the flush thread sent *during* each timed window (not only in the
untimed ``flush()`` after it), so the concurrency is visible.

In the same run, under the same thread counts: what ProxyWhirl users would do per request
otherwise, a labelled prometheus-client ``Counter.inc`` plus a labelled ``Histogram.observe``.
Scenarios are interleaved and repeated (``--repeat``); per percentile the report gives the median
over runs and the best run (on a shared machine the best run is the least disturbed one), the
ratios emit / prometheus, and whether the targets hold (p99 <= 5 us, p99.9 <= 50 us).

The tail (p99.9) is a handful of calls in a thousand, so each run also records what could have
stalled them during the timed window, read outside the timed calls: the garbage collector's
collections per generation, the flush thread's CPU time as a share of the window (how much of the
GIL it got: the encoding the emitters competed with), and how long the calling threads sat
runnable while no CPU ran them (Linux schedstat: other processes on a shared machine, or, with
more runnable threads than cores, this process's own threads contending for the GIL). A stall of
a calling thread inside a call is in its sample whatever caused it.

The machine's share, in the same run and under the same thread counts (``floor_*``): a call that
only spins in Python for as long as ``emit()``'s median call (calibrated at the start: the least
disturbed of three passes), allocating nothing, locking nothing, sending nothing. Whatever stalls
it (the hypervisor or the OS taking the CPU, interrupts, the GIL passing between the calling
threads) would stall any call of that length. What ``emit()``'s tail has beyond it is emit's
own: its allocations, its larger working set (a short loop recovers faster from an interrupt
that cooled the caches), the flush thread taking the GIL.

Run: .venv/bin/python benchmarks/emit_cost.py [--calls N] [--repeat R] [--threads 1,4,8]
Writes benchmarks/results/emit_cost.json (or ``--out``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(ROOT))

from prometheus_client import CollectorRegistry, Counter, Histogram  # noqa: E402

from producer import InProcessTransport, MetricsProducer, Outcome, ProducerSettings  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "emit_cost.json"
OUTCOMES = [Outcome.SUCCESS] * 8 + [Outcome.TIMEOUT, Outcome.HTTP_ERROR]
TARGET_P99_US = 5.0
TARGET_P99_9_US = 50.0
QUANTILES = ("p50_us", "p99_us", "p99_9_us", "mean_us")

Args = tuple[str, str, str, Outcome, float, int, int, int]


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
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


def _arguments(count: int, proxies: list[str], seed: int) -> list[Args]:
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


def _time_calls(call: Callable[..., object], args: list[Args]) -> list[int]:
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


def _schedstat_ns(native_id: int) -> tuple[int, int] | None:
    """A thread's (on-CPU ns, runnable-but-not-running ns) from Linux's
    ``/proc/self/task/<tid>/schedstat``; ``None`` where that is not available."""
    try:
        with open(f"/proc/self/task/{native_id}/schedstat") as f:
            run_ns, wait_ns, _slices = f.read().split()
        return int(run_ns), int(wait_ns)
    except (OSError, ValueError):
        return None


class _GcCounter:
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


def _run_threads(
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
        before = _schedstat_ns(me)
        results[i] = _time_calls(call, per_thread[i])
        after = _schedstat_ns(me)
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


def _prometheus_call() -> Callable[..., object]:
    registry = CollectorRegistry()
    requests = Counter(
        "bench_requests", "requests", ["pool", "region", "outcome"], registry=registry
    )
    latency = Histogram("bench_latency_seconds", "latency", ["pool", "region"], registry=registry)

    def record(
        pool: str,
        region: str,
        proxy_id: str,
        outcome: Outcome,
        latency_ms: float,
        status_code: int,
        bytes_in: int,
        bytes_out: int,
    ) -> None:
        requests.labels(pool, region, outcome.value).inc()
        latency.labels(pool, region).observe(latency_ms / 1000.0)

    return record


def _spin_call(iterations: int) -> Callable[..., object]:
    """A call with emit()'s arguments that only spins ``iterations`` times in Python."""
    loop = range(iterations)

    def spin(
        pool: str,
        region: str,
        proxy_id: str,
        outcome: Outcome,
        latency_ms: float,
        status_code: int,
        bytes_in: int,
        bytes_out: int,
    ) -> None:
        for _ in loop:
            pass

    return spin


def _least_median_ns(call: Callable[..., object], args: list[Args], tries: int = 3) -> float:
    """The lowest of ``tries`` medians (the least disturbed pass on a shared machine)."""
    return min(statistics.median(_time_calls(call, args)) for _ in range(tries))


def _spin_iterations(target_ns: float, args: list[Args]) -> int:
    """Spin iterations whose median call lasts about ``target_ns`` (timed like the others)."""
    base_ns = _least_median_ns(_spin_call(0), args)
    probe = 200
    per_iteration_ns = (_least_median_ns(_spin_call(probe), args) - base_ns) / probe
    return max(0, round((target_ns - base_ns) / max(per_iteration_ns, 1e-3)))


def _timer_overhead_ns() -> float:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(100_000):
        t0 = clock()
        samples.append(clock() - t0)
    return float(statistics.median(samples))


class _Scenario:
    def __init__(
        self,
        name: str,
        call: Callable[..., object],
        per_thread: list[list[Args]],
        producer: MetricsProducer | None,
        gc_counter: _GcCounter,
    ) -> None:
        self.name = name
        self._call = call
        self._per_thread = per_thread
        self._producer = producer
        self._gc = gc_counter
        self.runs: list[dict[str, float]] = []

    def run(self) -> None:
        before = self._producer.stats() if self._producer is not None else None
        flush_id = _flush_thread_id() if self._producer is not None else None
        flush_before = _schedstat_ns(flush_id) if flush_id is not None else None
        gc_before = self._gc.snapshot()
        samples, wall_s, emitters_wait_s = _run_threads(self._call, self._per_thread)
        gc_after = self._gc.snapshot()
        flush_after = _schedstat_ns(flush_id) if flush_id is not None else None
        result = _percentiles(samples)
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


def _flush_thread_id() -> int | None:
    """The native id of the (only) producer's flush thread, found by its name."""
    for thread in threading.enumerate():
        if thread.name.startswith("pwm-producer-flush-"):
            return thread.native_id
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--calls", type=int, default=200_000, help="calls per scenario run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario")
    parser.add_argument("--threads", default="1,4,8", help="comma-separated thread counts")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    ns = parser.parse_args()
    calls: int = ns.calls
    repeat: int = ns.repeat
    thread_counts = [int(t) for t in ns.threads.split(",")]

    sent_bytes = [0]

    def sink(pool: str, payload: bytes) -> None:
        sent_bytes[0] += len(payload)

    settings = ProducerSettings(
        source_host="bench-host",
        fleet_key="benchmark-fleet-key",
        max_buffer_events=max(1_000_000, 2 * calls),
        close_at_exit=False,
    )
    producer = MetricsProducer(settings, InProcessTransport(sink))
    proxies = [producer.proxy_id(f"10.0.{i // 250}.{i % 250}:8080") for i in range(2000)]
    prom = _prometheus_call()
    warm = _arguments(20_000, proxies, seed=1)
    _time_calls(producer.emit, warm)
    _time_calls(prom, warm)
    producer.flush(timeout_s=30.0)
    emit_median_ns = _least_median_ns(producer.emit, warm)
    producer.flush(timeout_s=30.0)
    spin_iterations = _spin_iterations(emit_median_ns, warm)
    floor = _spin_call(spin_iterations)

    gc_counter = _GcCounter()
    scenarios: list[_Scenario] = []
    for n in thread_counts:
        per_thread = [_arguments(calls // n, proxies, seed=100 * n + i) for i in range(n)]
        scenarios.append(_Scenario(f"emit_{n}t", producer.emit, per_thread, producer, gc_counter))
        scenarios.append(_Scenario(f"prometheus_{n}t", prom, per_thread, None, gc_counter))
        scenarios.append(_Scenario(f"floor_{n}t", floor, per_thread, None, gc_counter))
    report: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "switch_interval_s": sys.getswitchinterval(),
        "calls_per_scenario": calls,
        "timer_overhead_ns_median": _timer_overhead_ns(),
        "floor_spin_iterations": spin_iterations,
        "floor_calibrated_to_emit_median_ns": emit_median_ns,
        "repeat": repeat,
        "load_average_before": list(os.getloadavg()),
    }
    for _ in range(repeat):  # interleaved, so load from other processes hits all alike
        for scenario in scenarios:
            scenario.run()
    report["load_average_after"] = list(os.getloadavg())
    gc_counter.remove()
    for scenario in scenarios:
        report[scenario.name] = scenario.summary()
    for n in thread_counts:
        emit, base = report[f"emit_{n}t"]["median"], report[f"prometheus_{n}t"]["median"]
        report[f"ratio_emit_vs_prometheus_{n}t"] = {q: emit[q] / base[q] for q in QUANTILES}
        floor_median = report[f"floor_{n}t"]["median"]
        report[f"ratio_emit_vs_floor_{n}t"] = {q: emit[q] / floor_median[q] for q in QUANTILES}
        report[f"targets_met_{n}t"] = {
            "p99_le_5us": emit["p99_us"] <= TARGET_P99_US,
            "p99_9_le_50us": emit["p99_9_us"] <= TARGET_P99_9_US,
        }
    stats = producer.stats()
    producer.close()
    report["producer_stats"] = {
        "emitted": stats.emitted,
        "sent_events": stats.sent_events,
        "sent_batches": stats.sent_batches,
        "dropped_full": stats.dropped_full,
        "rejected": stats.rejected,
        "bytes_sent": sent_bytes[0],
    }
    _print(report, scenarios, thread_counts)
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    ns.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {ns.out}")


def _print(report: dict[str, Any], scenarios: list[_Scenario], thread_counts: list[int]) -> None:
    load = report["load_average_before"]
    print(
        f"python {report['python']}, {report['cpus']} cpus, timer overhead "
        f"{report['timer_overhead_ns_median']:.0f} ns, load average {load[0]:.2f} -> "
        f"{report['load_average_after'][0]:.2f}; {report['repeat']} runs of "
        f"{report['calls_per_scenario']} calls per scenario"
    )
    print(
        f"{'scenario':<16}{'':>6}{'p50 us':>9}{'p99 us':>9}{'p99.9 us':>10}{'mean us':>9}"
        f"{'calls/s':>11}{'envelopes sent while timed':>28}"
    )
    for scenario in scenarios:
        summary = report[scenario.name]
        for label in ("median", "best"):
            r = summary[label]
            extra = ""
            if label == "median":
                extra = f"{r['calls_per_s']:>11.0f}"
                if "envelopes_sent_while_timed" in r:
                    extra += f"{r['envelopes_sent_while_timed']:>28.0f}"
            print(
                f"{scenario.name:<16}{label:>6}{r['p50_us']:>9.2f}{r['p99_us']:>9.2f}"
                f"{r['p99_9_us']:>10.2f}{r['mean_us']:>9.2f}{extra}"
            )
    for n in thread_counts:
        ratio = report[f"ratio_emit_vs_prometheus_{n}t"]
        met = report[f"targets_met_{n}t"]
        print(
            f"emit / prometheus, {n} thread(s): p50 {ratio['p50_us']:.2f}x, p99 "
            f"{ratio['p99_us']:.2f}x, p99.9 {ratio['p99_9_us']:.2f}x; target p99 <= 5 us "
            f"{'met' if met['p99_le_5us'] else 'MISSED'}, p99.9 <= 50 us "
            f"{'met' if met['p99_9_le_50us'] else 'MISSED'}"
        )
        to_floor = report[f"ratio_emit_vs_floor_{n}t"]
        floor = report[f"floor_{n}t"]["median"]
        print(
            f"emit / floor, {n} thread(s): p99 {to_floor['p99_us']:.2f}x, p99.9 "
            f"{to_floor['p99_9_us']:.2f}x (the floor, a spin as long as emit's median: p99 "
            f"{floor['p99_us']:.2f} us, p99.9 {floor['p99_9_us']:.2f} us)"
        )
    print(
        "what could stall a call, per scenario (medians over runs): GC collections gen0/1/2 in "
        "the window; flush thread CPU as a share of the window; calling threads' time runnable "
        "but waiting for a CPU, as a share of the window (summed over the threads)"
    )
    for scenario in scenarios:
        r = report[scenario.name]["median"]
        gcs = "/".join(f"{r.get(f'gc_gen{g}_collections_while_timed', 0):.0f}" for g in range(3))
        flush = r.get("flush_thread_cpu_share_while_timed")
        other = r.get("callers_runnable_not_running_share")
        print(
            f"{scenario.name:<16} gc {gcs:<9} flush thread "
            f"{'-' if flush is None else f'{flush:.0%}':>5}   callers waiting for a CPU "
            f"{'-' if other is None else f'{other:.1%}':>6}"
        )
    print(f"producer: {report['producer_stats']}")


if __name__ == "__main__":
    main()
