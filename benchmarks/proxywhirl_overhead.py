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
import contextlib
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from loguru import logger as loguru_logger  # noqa: E402
from prometheus_client import CollectorRegistry, Counter, Histogram  # noqa: E402
from proxywhirl import AsyncProxyWhirl, Proxy, ProxyWhirl  # noqa: E402
from proxywhirl.retry import RetryPolicy  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from producer import InProcessTransport, MetricsProducer, ProducerSettings  # noqa: E402
from producer.integrations.proxywhirl import Instrumentation, instrument  # noqa: E402
from tests.support.proxies import LabProxy  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "proxywhirl_overhead.json"
FAST_RETRIES = RetryPolicy(base_delay=0.01)
WARMUP = 200


def _summary(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    n = len(ordered)

    def at(q: float) -> float:
        return ordered[min(n - 1, int(q * n))] / 1000.0

    return {
        "n": n,
        "mean_us": statistics.fmean(ordered) / 1000.0,
        "p50_us": at(0.50),
        "p90_us": at(0.90),
        "p99_us": at(0.99),
    }


class RemoteLab:
    """The loopback lab in its own process (``python -m tests.support.proxies``)."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.proxies", "--slow-delay-ms", "0"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        info = json.loads(self._process.stdout.readline())
        self.target_port: int = info["target_port"]
        self.healthy = LabProxy("healthy", **info["proxies"]["healthy"])

    def target_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.target_port}{path}"

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=30)


def _proxy(healthy: LabProxy) -> Proxy:
    assert healthy.username is not None
    assert healthy.password is not None
    return Proxy(
        url=healthy.url,
        allow_local=True,
        username=SecretStr(healthy.username),
        password=SecretStr(healthy.password),
        tags={"pool:bench"},
        country_code="DE",
    )


def _producer() -> MetricsProducer:
    settings = ProducerSettings(
        source_host="bench-host",
        fleet_key="benchmark-fleet-key",
        max_buffer_events=1_000_000,
        close_at_exit=False,
    )
    return MetricsProducer(settings, InProcessTransport(lambda pool, payload: None))


def _prometheus_wrapped(rotator: ProxyWhirl) -> None:
    """What a hand-written prometheus-client instrumentation of ``get`` would do."""
    registry = CollectorRegistry()
    requests = Counter(
        "bench_requests", "requests", ["pool", "region", "outcome"], registry=registry
    )
    latency = Histogram("bench_latency_seconds", "latency", ["pool", "region"], registry=registry)
    original = rotator.get

    @functools.wraps(original)
    def get(url: str, **kwargs: Any) -> httpx.Response:
        started = time.perf_counter()
        outcome = "error"
        try:
            response = original(url, **kwargs)
            outcome = "success" if response.status_code < 400 else "http_error"
            return response
        finally:
            requests.labels("bench", "DE", outcome).inc()
            latency.labels("bench", "DE").observe(time.perf_counter() - started)

    rotator.get = get  # type: ignore[method-assign]


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
    plain_wall, other_wall = _summary(wall[0]), _summary(wall[1])
    plain_cpu, other_cpu = _summary(cpu[0]), _summary(cpu[1])
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


def _plain(healthy: LabProxy) -> ProxyWhirl:
    return ProxyWhirl(proxies=[_proxy(healthy)], retry_policy=FAST_RETRIES, bootstrap=False)


def _end_to_end_sync(lab: RemoteLab, pairs: int) -> dict[str, Any]:
    """Plain, control, instrumented and prometheus-wrapped rotators in the same rounds: each
    scenario is the A/B of its rotator against the plain one, and the integration and the
    prometheus-client wrapper are measured under the same conditions."""
    url = lab.target_url("/ok")
    producer = _producer()
    rotators = {name: _plain(lab.healthy) for name in ("plain", "control", "integration")}
    instrument(rotators["integration"], producer, pool="bench")
    rotators["prometheus"] = _plain(lab.healthy)
    _prometheus_wrapped(rotators["prometheus"])
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
    producer = _producer()
    plain = AsyncProxyWhirl(
        proxies=[_proxy(lab.healthy)], retry_policy=FAST_RETRIES, bootstrap=False
    )
    measured = AsyncProxyWhirl(
        proxies=[_proxy(lab.healthy)], retry_policy=FAST_RETRIES, bootstrap=False
    )
    async with plain, measured:
        instrument(measured, producer, pool="bench")
        report = await _ab_async(plain.get, measured.get, url, pairs)
    await producer.aflush(timeout_s=30.0)
    report["producer_emitted"] = producer.stats().emitted
    producer.close()
    return report


class _Sampler:
    """Times, inside real requests, the integration's own code around ProxyWhirl's call (the
    wrapper's time minus that of the method it wraps), ``Instrumentation._settle`` (outcome,
    labels, emit) and ``producer.emit()`` within it.

    The request wrappers bind ``_settle`` when ``instrument()`` creates them, so the timed
    version is installed on the class first and the rotator is instrumented inside.
    """

    def __init__(self) -> None:
        self.hook_ns: list[int] = []
        self.settle_ns: list[int] = []
        self.emit_ns: list[int] = []
        self._inner_ns = 0
        self._saved = Instrumentation._settle

    def __enter__(self) -> _Sampler:
        clock = time.perf_counter_ns
        settle, settle_ns = self._saved, self.settle_ns

        def timed_settle(handle: Instrumentation, *args: Any) -> None:
            t0 = clock()
            settle(handle, *args)
            settle_ns.append(clock() - t0)

        Instrumentation._settle = timed_settle  # type: ignore[assignment,method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        Instrumentation._settle = self._saved  # type: ignore[method-assign]

    def instrument(self, rotator: ProxyWhirl, producer: MetricsProducer) -> Callable[[str], Any]:
        """Instrument ``rotator`` with its own method timed; returns the timed request call."""
        clock = time.perf_counter_ns
        original, sampler = rotator.get, self

        def timed_original(url: str, **kwargs: Any) -> httpx.Response:
            t0 = clock()
            try:
                return original(url, **kwargs)
            finally:
                sampler._inner_ns = clock() - t0

        rotator.get = timed_original  # type: ignore[method-assign]
        handle = instrument(rotator, producer, pool="bench")
        emit, emit_ns = producer.emit, self.emit_ns

        class TimedEmitter:
            def emit(self, *args: Any) -> bool:
                t0 = clock()
                accepted = emit(*args)
                emit_ns.append(clock() - t0)
                return accepted

        handle._producer = TimedEmitter()  # type: ignore[assignment]
        instrumented, hook_ns = rotator.get, self.hook_ns

        def call(url: str) -> Any:
            t0 = clock()
            response = instrumented(url)
            hook_ns.append(clock() - t0 - sampler._inner_ns)
            return response

        return call

    def report(self) -> dict[str, Any]:
        return {
            "hook_around_call": _summary(self.hook_ns),
            "settle": _summary(self.settle_ns),
            "emit_within_settle": _summary(self.emit_ns),
        }


def _in_request(lab: RemoteLab, samples: int) -> dict[str, Any]:
    url = lab.target_url("/ok")
    producer = _producer()
    rotator = _plain(lab.healthy)
    for _ in range(WARMUP):
        rotator.get(url)
    with _Sampler() as sampler:
        call = sampler.instrument(rotator, producer)
        for _ in range(samples):
            call(url)
    producer.close()
    rotator.__exit__(None, None, None)
    return sampler.report()


class _StubRotator(ProxyWhirl):
    """ProxyWhirl's request method replaced by what it and httpx do with our seams, nothing
    else: select a proxy through the strategy, run the ``auth=`` flow of one attempt (httpx runs
    its default ``Auth()`` flow when none is given), report the result to the strategy."""

    def __init__(self, proxy: Proxy) -> None:
        super().__init__(proxies=[proxy], bootstrap=False)
        self._request = httpx.Request("GET", "http://t/")
        self._response = httpx.Response(200, content=b"ok", request=self._request)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        proxy = self.strategy.select(self.pool)
        auth = kwargs.get("auth")
        if not isinstance(auth, httpx.Auth):
            auth = httpx.Auth()
        flow = auth.sync_auth_flow(self._request)
        next(flow)
        with contextlib.suppress(StopIteration):
            flow.send(self._response)
        self.strategy.record_result(proxy, success=True, response_time_ms=1.0)
        return self._response


def _cpu_blocks_ns(
    calls: dict[str, Callable[[str], Any]], per_block: int, blocks: int
) -> dict[str, list[float]]:
    """CPU per call of each callable, in ``blocks`` interleaved blocks of ``per_block`` calls."""
    results: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(blocks):
        for name, call in calls.items():
            started = time.thread_time_ns()
            for _ in range(per_block):
                call("http://t/")
            results[name].append((time.thread_time_ns() - started) / per_block)
    return results


def _isolated(healthy: LabProxy, calls: int, blocks: int = 25) -> dict[str, Any]:
    producer = _producer()
    bare = _StubRotator(_proxy(healthy))
    instrumented = _StubRotator(_proxy(healthy))
    instrument(instrumented, producer, pool="bench")
    reference = _StubRotator(_proxy(healthy))
    _prometheus_wrapped(reference)
    pid = producer.proxy_id("203.0.113.9:3128")

    def emit_only(url: str) -> None:
        producer.emit("bench", "DE", pid, "success", 1.5, 200, 25)

    per_block = max(1, calls // blocks)
    ns = _cpu_blocks_ns(
        {
            "bare": bare.get,
            "integration": instrumented.get,
            "prometheus": reference.get,
            "emit": emit_only,
        },
        per_block,
        blocks,
    )
    producer.close()
    best = {name: min(values) for name, values in ns.items()}
    median = {name: statistics.median(values) for name, values in ns.items()}
    report: dict[str, Any] = {"calls_per_block": per_block, "blocks": blocks}
    for label, pick in (("best", best), ("median", median)):
        added_integration = (pick["integration"] - pick["bare"]) / 1000
        added_prometheus = (pick["prometheus"] - pick["bare"]) / 1000
        report[label] = {
            "stub_bare_cpu_us": pick["bare"] / 1000,
            "integration_cpu_us": added_integration,
            "prometheus_wrapper_cpu_us": added_prometheus,
            "ratio_integration_vs_prometheus": added_integration / added_prometheus,
            "emit_cpu_us": pick["emit"] / 1000,
        }
    return report


def _isolated_cold(healthy: LabProxy, calls: int, evict_mib: int = 16) -> dict[str, Any]:
    """(3) with cold caches: before each call, 16 MiB are copied (more than this machine's
    caches hold), as ProxyWhirl's and httpx's own work and the other processes do between two
    requests in situ. CPU per call (p50 of ``thread_time_ns``, copy excluded) minus the bare
    stub's, the calls of the three stubs rotating."""
    producer = _producer()
    stubs = {name: _StubRotator(_proxy(healthy)) for name in ("bare", "integration", "prometheus")}
    instrument(stubs["integration"], producer, pool="bench")
    _prometheus_wrapped(stubs["prometheus"])
    gets = {name: stub.get for name, stub in stubs.items()}
    names = list(gets)
    for _ in range(WARMUP):
        for name in names:
            gets[name]("http://t/")
    ns: dict[str, list[int]] = {name: [] for name in names}
    scratch, source = bytearray(evict_mib << 20), bytes(evict_mib << 20)
    cpu_clock = time.thread_time_ns
    for i in range(calls):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            scratch[:] = source
            c0 = cpu_clock()
            gets[name]("http://t/")
            ns[name].append(cpu_clock() - c0)
    producer.close()
    p50 = {name: statistics.median(values) / 1000 for name, values in ns.items()}
    integration, prometheus = p50["integration"] - p50["bare"], p50["prometheus"] - p50["bare"]
    return {
        "calls": calls,
        "evicted_mib": evict_mib,
        "stub_bare_cpu_us": p50["bare"],
        "integration_cpu_us": integration,
        "prometheus_wrapper_cpu_us": prometheus,
        "ratio_integration_vs_prometheus": integration / prometheus,
    }


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
        report["in_request"] = _in_request(lab, ns.samples)
        report["isolated"] = _isolated(lab.healthy, ns.isolated_calls)
        report["isolated_cold"] = _isolated_cold(lab.healthy, ns.cold_calls)
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
