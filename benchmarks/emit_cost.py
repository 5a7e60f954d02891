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

The parts: the timing (emit_cost_timing.py), the peer and the floor (emit_cost_peers.py), the
stall probes (emit_cost_probes.py), a scenario's runs (emit_cost_scenario.py) and the printed
table (emit_cost_report.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(ROOT))

from benchmarks.emit_cost_peers import prometheus_call, spin_call, spin_iterations  # noqa: E402
from benchmarks.emit_cost_probes import GcCounter  # noqa: E402
from benchmarks.emit_cost_report import print_report  # noqa: E402
from benchmarks.emit_cost_scenario import QUANTILES, Scenario  # noqa: E402
from benchmarks.emit_cost_timing import (  # noqa: E402
    arguments,
    least_median_ns,
    time_calls,
    timer_overhead_ns,
)
from producer import InProcessTransport, MetricsProducer, ProducerSettings  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "emit_cost.json"
TARGET_P99_US = 5.0
TARGET_P99_9_US = 50.0


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
    prom = prometheus_call()
    warm = arguments(20_000, proxies, seed=1)
    time_calls(producer.emit, warm)
    time_calls(prom, warm)
    producer.flush(timeout_s=30.0)
    emit_median_ns = least_median_ns(producer.emit, warm)
    producer.flush(timeout_s=30.0)
    floor_iterations = spin_iterations(emit_median_ns, warm)
    floor = spin_call(floor_iterations)

    gc_counter = GcCounter()
    scenarios: list[Scenario] = []
    for n in thread_counts:
        per_thread = [arguments(calls // n, proxies, seed=100 * n + i) for i in range(n)]
        scenarios.append(Scenario(f"emit_{n}t", producer.emit, per_thread, producer, gc_counter))
        scenarios.append(Scenario(f"prometheus_{n}t", prom, per_thread, None, gc_counter))
        scenarios.append(Scenario(f"floor_{n}t", floor, per_thread, None, gc_counter))
    report: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "switch_interval_s": sys.getswitchinterval(),
        "calls_per_scenario": calls,
        "timer_overhead_ns_median": timer_overhead_ns(),
        "floor_spin_iterations": floor_iterations,
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
    print_report(report, scenarios, thread_counts)
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    ns.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {ns.out}")


if __name__ == "__main__":
    main()
