"""Added latency of the ProxyWhirl integration per proxied request, and the emit cost inside it.

Everything runs against real components on loopback: the local forward proxy and target server
of ``tests/support/proxies.py`` (in a child process, so they do not compete for this process's
GIL), ProxyWhirl 0.3.3, and a real MetricsProducer whose in-process transport only counts.

1. End to end, A/B: identical rotators over the same local proxy. Sync: a plain rotator and
   one of each scenario below, all called once per round in an order that rotates and flips
   every round, so every scenario and the plain rotator see the same machine load and the
   integration and the prometheus-client wrapper are compared under the same conditions.
   Async: the plain and the instrumented rotator in strict alternation (the pair's order flips
   every time). For each request: wall time and this thread's CPU time (``thread_time_ns``,
   blind to preemption by other processes, so less noisy). Scenarios, each against the plain
   rotator:

   * ``control``: another plain rotator (A/A): the noise floor;
   * ``integration_sync`` / ``integration_async``: the rotator instrumented with ``instrument()``;
   * ``reference_prometheus``: the rotator's ``get`` wrapped by a minimal hand-written wrapper
     that records what ProxyWhirl users would otherwise record with prometheus-client
     (labelled ``Counter.inc`` + ``Histogram.observe``): what any per-request instrumentation
     costs inside a real request.

   The added CPU is the request thread's. The producer's flush thread (encoding and handing
   over the events: work the prometheus wrapper does not do at all) is reported beside it, per
   request, and not included.

2. Inside real instrumented requests: time in the integration's own code around ProxyWhirl's
   call (the wrapper's time minus the wrapped method's), in ``Instrumentation._settle`` (outcome,
   labels, emit) and in ``producer.emit()`` within it, sampled with ``perf_counter_ns`` (the
   sampling wrappers add their own cost; timer overhead reported).
3. Isolated: CPU per call against a stub that does what ProxyWhirl and httpx do with the seams
   (asks the strategy, drives the ``auth=`` flow once, httpx's default ``Auth()`` flow when no
   ``auth=`` is given, reports the result to the strategy), minus the bare stub, for the
   integration and, in the same interleaved blocks, the minimal prometheus-client wrapper; best
   and median of blocks of ``thread_time_ns``. This is the hot-cache cost. The same with cold
   caches (16 MiB copied before each call, as ProxyWhirl's and httpx's work and the other
   processes do between requests in situ) approaches the cost in (1) without its noise.

The headline is target 3 of the speed work: the integration's added CPU per request at or below
the minimal prometheus-client wrapper's, both measured in the same run.

ProxyWhirl's loguru logging is disabled: it makes each request slower, so the percentages below
are conservative (a smaller denominator).

Run: .venv/bin/python benchmarks/proxywhirl_overhead.py [--pairs N] [--samples N]
Writes benchmarks/results/proxywhirl_overhead.json (or ``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(ROOT))

from loguru import logger as loguru_logger  # noqa: E402
from proxywhirl import AsyncProxyWhirl  # noqa: E402

from benchmarks.proxywhirl_in_request import in_request  # noqa: E402
from benchmarks.proxywhirl_isolated import isolated, isolated_cold  # noqa: E402
from benchmarks.proxywhirl_lab import (  # noqa: E402
    FAST_RETRIES,
    WARMUP,
    RemoteLab,
    bench_producer,
    lab_proxy,
    plain_rotator,
    prometheus_wrapped,
    summary,
)
from producer.integrations.proxywhirl import instrument  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "proxywhirl_overhead.json"


def _rounds_sync(
    calls: dict[str, Callable[[str], Any]], url: str, rounds: int
) -> tuple[dict[str, list[int]], dict[str, list[int]], int]:
    """Every callable once per round, in an order that rotates and flips every round, so each
    sees the same machine load and follows each other equally often: wall and CPU time per call
    by name, and the CPU time of this process's other threads over all rounds."""
    names = list(calls)
    for _ in range(WARMUP):
        for name in names:
            calls[name](url)
    wall: dict[str, list[int]] = {name: [] for name in names}
    cpu: dict[str, list[int]] = {name: [] for name in names}
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    process_before, thread_before = time.process_time_ns(), cpu_clock()
    for i in range(rounds):
        k = i % len(names)
        order = names[k:] + names[:k]
        if i % 2:
            order.reverse()
        for name in order:
            call = calls[name]
            t0, c0 = clock(), cpu_clock()
            call(url)
            cpu[name].append(cpu_clock() - c0)
            wall[name].append(clock() - t0)
    other_threads_ns = (time.process_time_ns() - process_before) - (cpu_clock() - thread_before)
    return wall, cpu, other_threads_ns


async def _ab_async(
    first: Callable[[str], Awaitable[Any]],
    second: Callable[[str], Awaitable[Any]],
    url: str,
    pairs: int,
) -> dict[str, Any]:
    for _ in range(WARMUP):
        await first(url)
        await second(url)
    wall: tuple[list[int], list[int]] = ([], [])
    cpu: tuple[list[int], list[int]] = ([], [])
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    for i in range(pairs):
        for side in (0, 1) if i % 2 else (1, 0):
            call = first if side == 0 else second
            t0, c0 = clock(), cpu_clock()
            await call(url)
            cpu[side].append(cpu_clock() - c0)
            wall[side].append(clock() - t0)
    return _ab_report(wall, cpu)


def _ab_report(
    wall: tuple[list[int], list[int]], cpu: tuple[list[int], list[int]]
) -> dict[str, Any]:
    plain_wall, other_wall = summary(wall[0]), summary(wall[1])
    plain_cpu, other_cpu = summary(cpu[0]), summary(cpu[1])
    added_wall = other_wall["p50_us"] - plain_wall["p50_us"]
    added_cpu = other_cpu["p50_us"] - plain_cpu["p50_us"]
    return {
        "plain_wall": plain_wall,
        "other_wall": other_wall,
        "plain_cpu": plain_cpu,
        "other_cpu": other_cpu,
        "added_wall_p50_us": added_wall,
        "added_wall_p50_percent": 100.0 * added_wall / plain_wall["p50_us"],
        "added_cpu_p50_us": added_cpu,
        "added_cpu_p50_percent_of_wall": 100.0 * added_cpu / plain_wall["p50_us"],
    }


def _median_of_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median over repeated A/B runs of each headline number (runs vary with load)."""
    keys = (
        "added_wall_p50_us",
        "added_wall_p50_percent",
        "added_cpu_p50_us",
        "added_cpu_p50_percent_of_wall",
    )
    combined: dict[str, Any] = {key: statistics.median(run[key] for run in runs) for key in keys}
    combined["plain_wall_p50_us"] = statistics.median(r["plain_wall"]["p50_us"] for r in runs)
    combined["other_wall_p50_us"] = statistics.median(r["other_wall"]["p50_us"] for r in runs)
    combined["plain_cpu_p50_us"] = statistics.median(r["plain_cpu"]["p50_us"] for r in runs)
    combined["added_cpu_p50_us_each_run"] = [round(r["added_cpu_p50_us"], 1) for r in runs]
    if all("flush_thread_cpu_per_request_us" in r for r in runs):
        combined["flush_thread_cpu_per_request_us"] = statistics.median(
            r["flush_thread_cpu_per_request_us"] for r in runs
        )
    return combined


def _end_to_end_sync(lab: RemoteLab, pairs: int) -> dict[str, Any]:
    """Plain, control, instrumented and prometheus-wrapped rotators in the same rounds: each
    scenario is the A/B of its rotator against the plain one, and the integration and the
    prometheus-client wrapper are measured under the same conditions."""
    url = lab.target_url("/ok")
    producer = bench_producer()
    rotators = {name: plain_rotator(lab.healthy) for name in ("plain", "control", "integration")}
    instrument(rotators["integration"], producer, pool="bench")
    rotators["prometheus"] = plain_rotator(lab.healthy)
    prometheus_wrapped(rotators["prometheus"])
    wall, cpu, other_threads_ns = _rounds_sync(
        {name: rotator.get for name, rotator in rotators.items()}, url, pairs
    )
    report: dict[str, Any] = {}
    for scenario, name in (
        ("control", "control"),
        ("integration_sync", "integration"),
        ("reference_prometheus", "prometheus"),
    ):
        report[scenario] = _ab_report((wall["plain"], wall[name]), (cpu["plain"], cpu[name]))
    producer.flush(timeout_s=30.0)
    stats = producer.stats()
    report["integration_sync"]["producer_emitted"] = stats.emitted
    report["integration_sync"]["producer_rejected"] = stats.rejected
    # Not in the added CPU above (this thread's only): the producer's flush thread encoding and
    # handing over the events, the only other thread here. The prometheus wrapper ships nothing.
    report["integration_sync"]["flush_thread_cpu_per_request_us"] = other_threads_ns / pairs / 1e3
    producer.close()
    for rotator in rotators.values():
        rotator.__exit__(None, None, None)
    return report


async def _end_to_end_async(lab: RemoteLab, pairs: int) -> dict[str, Any]:
    url = lab.target_url("/ok")
    producer = bench_producer()
    plain = AsyncProxyWhirl(
        proxies=[lab_proxy(lab.healthy)], retry_policy=FAST_RETRIES, bootstrap=False
    )
    measured = AsyncProxyWhirl(
        proxies=[lab_proxy(lab.healthy)], retry_policy=FAST_RETRIES, bootstrap=False
    )
    async with plain, measured:
        instrument(measured, producer, pool="bench")
        report = await _ab_async(plain.get, measured.get, url, pairs)
    await producer.aflush(timeout_s=30.0)
    report["producer_emitted"] = producer.stats().emitted
    producer.close()
    return report


def _headline(report: dict[str, Any]) -> dict[str, Any]:
    """Target 3: added CPU per request, the integration against the prometheus-client wrapper."""
    e2e = report["end_to_end"]
    hook = e2e["integration_sync"]["added_cpu_p50_us"]
    prom = e2e["reference_prometheus"]["added_cpu_p50_us"]
    iso = report["isolated"]["best"]
    cold = report["isolated_cold"]
    return {
        "end_to_end_added_cpu_us": {"integration_sync": hook, "prometheus_wrapper": prom},
        "end_to_end_ratio": hook / prom if prom > 0 else None,
        "end_to_end_met": hook <= prom,
        "isolated_added_cpu_us": {
            "integration": iso["integration_cpu_us"],
            "prometheus_wrapper": iso["prometheus_wrapper_cpu_us"],
        },
        "isolated_ratio": iso["ratio_integration_vs_prometheus"],
        "isolated_met": iso["integration_cpu_us"] <= iso["prometheus_wrapper_cpu_us"],
        "isolated_cold_added_cpu_us": {
            "integration": cold["integration_cpu_us"],
            "prometheus_wrapper": cold["prometheus_wrapper_cpu_us"],
        },
        "isolated_cold_ratio": cold["ratio_integration_vs_prometheus"],
        "flush_thread_cpu_per_request_us": e2e["integration_sync"].get(
            "flush_thread_cpu_per_request_us"
        ),
    }


def _print(report: dict[str, Any]) -> None:
    print(f"timer overhead (median): {report['timer_overhead_ns_median']:.0f} ns")
    print(
        f"{'end to end, median of runs':<28}{'plain us':>9}{'cpu us':>8}{'added wall':>12}"
        f"{'added cpu':>11}"
    )
    for name, r in report["end_to_end"].items():
        print(
            f"{name:<28}{r['plain_wall_p50_us']:>9.0f}{r['plain_cpu_p50_us']:>8.0f}"
            f"{r['added_wall_p50_us']:>+9.1f} us{r['added_cpu_p50_us']:>+8.1f} us"
            f"  ({r['added_wall_p50_percent']:+.2f}% wall, "
            f"{r['added_cpu_p50_percent_of_wall']:+.2f}% as cpu; runs "
            f"{r['added_cpu_p50_us_each_run']})"
        )
    inside = report["in_request"]
    print(
        "inside instrumented requests (p50, wall): the hook around the call "
        f"{inside['hook_around_call']['p50_us']:.1f} us, of which settle "
        f"{inside['settle']['p50_us']:.1f} us, of which emit "
        f"{inside['emit_within_settle']['p50_us']:.1f} us"
    )
    for label in ("best", "median"):
        iso = report["isolated"][label]
        ratio = iso["ratio_integration_vs_prometheus"]
        print(
            f"isolated, hot caches, {label} block (cpu per call): integration "
            f"{iso['integration_cpu_us']:.2f} us, prometheus-client wrapper "
            f"{iso['prometheus_wrapper_cpu_us']:.2f} us ({ratio:.2f}x; stub alone "
            f"{iso['stub_bare_cpu_us']:.2f} us), emit alone {iso['emit_cpu_us']:.2f} us"
        )
    cold = report["isolated_cold"]
    print(
        f"isolated, cold caches ({cold['evicted_mib']} MiB evicted before each call, p50): "
        f"integration {cold['integration_cpu_us']:.2f} us, prometheus-client wrapper "
        f"{cold['prometheus_wrapper_cpu_us']:.2f} us "
        f"({cold['ratio_integration_vs_prometheus']:.2f}x)"
    )
    head = report["headline"]
    flush = head["flush_thread_cpu_per_request_us"]
    if flush is not None:
        print(
            f"not in the added CPU: the producer's flush thread, {flush:.2f} us CPU per request "
            "(encoding and handing over the events; the prometheus wrapper ships nothing)"
        )
    e2e_ratio = head["end_to_end_ratio"]
    print(
        "target 3, added CPU per request vs the prometheus-client wrapper: end to end "
        f"{head['end_to_end_added_cpu_us']['integration_sync']:+.1f} vs "
        f"{head['end_to_end_added_cpu_us']['prometheus_wrapper']:+.1f} us "
        f"({'n/a' if e2e_ratio is None else f'{e2e_ratio:.2f}x'}, "
        f"{'met' if head['end_to_end_met'] else 'MISSED'}); isolated "
        f"{head['isolated_added_cpu_us']['integration']:.2f} vs "
        f"{head['isolated_added_cpu_us']['prometheus_wrapper']:.2f} us "
        f"({head['isolated_ratio']:.2f}x, {'met' if head['isolated_met'] else 'MISSED'}); "
        f"load average {report['load_average_before'][0]:.2f} -> "
        f"{report['load_average_after'][0]:.2f}"
    )


def _timer_overhead_ns() -> float:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(100_000):
        t0 = clock()
        samples.append(clock() - t0)
    return float(statistics.median(samples))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--pairs", type=int, default=1500, help="request pairs per A/B run")
    parser.add_argument("--reps", type=int, default=3, help="runs of every A/B scenario")
    parser.add_argument("--samples", type=int, default=2000, help="sampled instrumented requests")
    parser.add_argument("--isolated-calls", type=int, default=50_000)
    parser.add_argument("--cold-calls", type=int, default=3000, help="calls per stub, cold caches")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    ns = parser.parse_args()
    loguru_logger.disable("proxywhirl")
    report: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "proxywhirl_logging": "disabled (conservative: cheaper requests, larger percentages)",
        "timer_overhead_ns_median": _timer_overhead_ns(),
        "pairs": ns.pairs,
        "load_average_before": list(os.getloadavg()),
    }
    lab = RemoteLab()
    try:
        runs: dict[str, list[dict[str, Any]]] = {}
        for _ in range(ns.reps):
            sync_runs = _end_to_end_sync(lab, ns.pairs)
            sync_runs["integration_async"] = asyncio.run(_end_to_end_async(lab, ns.pairs))
            for name, run in sync_runs.items():
                runs.setdefault(name, []).append(run)
        report["end_to_end_runs"] = runs
        report["end_to_end"] = {name: _median_of_runs(r) for name, r in runs.items()}
        report["in_request"] = in_request(lab, ns.samples)
        report["isolated"] = isolated(lab.healthy, ns.isolated_calls)
        report["isolated_cold"] = isolated_cold(lab.healthy, ns.cold_calls)
    finally:
        lab.close()
    report["load_average_after"] = list(os.getloadavg())
    report["headline"] = _headline(report)
    _print(report)
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    ns.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {ns.out}")


if __name__ == "__main__":
    main()
