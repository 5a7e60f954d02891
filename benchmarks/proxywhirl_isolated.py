"""The ProxyWhirl integration's own cost with no network in the way: against a stub rotator
that does what ProxyWhirl and httpx do with the integration's seams and nothing else, with hot
caches (interleaved blocks of calls) and with cold ones (16 MiB copied before each call, as a
real request's own work does between two requests). Part of benchmarks/proxywhirl_overhead.py.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx
from proxywhirl import Proxy, ProxyWhirl

from benchmarks.proxywhirl_lab import WARMUP, bench_producer, lab_proxy, prometheus_wrapped
from producer.integrations.proxywhirl import instrument
from tests.support.proxies import LabProxy

__all__ = ["StubRotator", "isolated", "isolated_cold"]


class StubRotator(ProxyWhirl):
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


def isolated(healthy: LabProxy, calls: int, blocks: int = 25) -> dict[str, Any]:
    producer = bench_producer()
    bare = StubRotator(lab_proxy(healthy))
    instrumented = StubRotator(lab_proxy(healthy))
    instrument(instrumented, producer, pool="bench")
    reference = StubRotator(lab_proxy(healthy))
    prometheus_wrapped(reference)
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


def isolated_cold(healthy: LabProxy, calls: int, evict_mib: int = 16) -> dict[str, Any]:
    """(3) with cold caches: before each call, 16 MiB are copied (more than this machine's
    caches hold), as ProxyWhirl's and httpx's own work and the other processes do between two
    requests in situ. CPU per call (p50 of ``thread_time_ns``, copy excluded) minus the bare
    stub's, the calls of the three stubs rotating."""
    producer = bench_producer()
    stubs = {
        name: StubRotator(lab_proxy(healthy)) for name in ("bare", "integration", "prometheus")
    }
    instrument(stubs["integration"], producer, pool="bench")
    prometheus_wrapped(stubs["prometheus"])
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
