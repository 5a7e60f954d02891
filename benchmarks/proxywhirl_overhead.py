"""Added latency of the ProxyWhirl integration per proxied request, and the emit cost inside it.

Three measurements, all against real components on loopback (the local forward proxy and
target server of ``tests/support/proxies.py``, run in a child process so they do not compete for
this process's GIL; ProxyWhirl 0.3.3; a real MetricsProducer whose in-process transport only
counts envelopes):

1. End to end, A/B: two identical rotators over the same local proxy, one instrumented, one
   not, used in strict alternation (the pair's order flips each time), so both see the same
   machine load. Per-request wall time (median, p90, p99) of each,
   sync (``ProxyWhirl``) and async (``AsyncProxyWhirl``, one request at a time). The difference
   of medians is the added latency; on 2 shared cores it is within noise of zero, which is
   why (2) and (3) exist.
2. Inside real instrumented requests: the time spent in the integration's own code before and
   after ProxyWhirl's call (``_begin`` + ``_finish``), and in ``producer.emit()`` within it,
   sampled with ``perf_counter_ns`` around each (timer overhead reported, not subtracted).
3. The integration's full per-request CPU cost, isolated: an instrumented call against a stub
   that does what ProxyWhirl does with our seams (asks the strategy, drives the ``auth=`` flow
   with one response) minus the same stub called bare. This includes the ``auth`` wrapper,
   which (2) cannot see.

ProxyWhirl's own loguru logging is disabled: it makes each request slower, so the percentages
below are conservative (a smaller denominator).

Run: .venv/bin/python benchmarks/proxywhirl_overhead.py [--rounds N] [--per-round N]
Writes benchmarks/results/proxywhirl_overhead.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from loguru import logger as loguru_logger  # noqa: E402
from proxywhirl import AsyncProxyWhirl, Proxy, ProxyWhirl  # noqa: E402
from proxywhirl.retry import RetryPolicy  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from producer import InProcessTransport, MetricsProducer, ProducerSettings  # noqa: E402
from producer.integrations.proxywhirl import Instrumentation, instrument  # noqa: E402
from tests.support.proxies import LabProxy  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "proxywhirl_overhead.json"


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
    """The loopback lab in its own process (``python -m tests.support.proxies``), so the
    proxy and target do not compete with the measured client for this process's GIL."""

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


def _proxy(lab: RemoteLab) -> Proxy:
    healthy = lab.healthy
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


def _producer(counter: list[int]) -> MetricsProducer:
    def deliver(pool: str, payload: bytes) -> None:
        counter[0] += 1

    settings = ProducerSettings(
        source_host="bench-host",
        fleet_key="benchmark-fleet-key",
        max_buffer_events=1_000_000,
        close_at_exit=False,
    )
    return MetricsProducer(settings, InProcessTransport(deliver))


class _Sampler:
    """Times Instrumentation._begin/_finish and producer.emit inside real requests.

    The request wrappers bind ``_begin``/``_finish`` when ``instrument()`` creates them, so the
    timed versions are installed on the class first and the rotator is instrumented inside.
    """

    def __init__(self) -> None:
        self.begin_ns: list[int] = []
        self.finish_ns: list[int] = []
        self.emit_ns: list[int] = []
        self._saved = (Instrumentation._begin, Instrumentation._finish)

    def __enter__(self) -> _Sampler:
        clock = time.perf_counter_ns
        begin, finish = self._saved
        begin_ns, finish_ns = self.begin_ns, self.finish_ns

        def timed_begin(handle: Instrumentation, kwargs: dict[str, Any]) -> Any:
            t0 = clock()
            result = begin(handle, kwargs)
            begin_ns.append(clock() - t0)
            return result

        def timed_finish(handle: Instrumentation, *args: Any) -> None:
            t0 = clock()
            finish(handle, *args)
            finish_ns.append(clock() - t0)

        Instrumentation._begin = timed_begin  # type: ignore[assignment,method-assign]
        Instrumentation._finish = timed_finish  # type: ignore[assignment,method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        Instrumentation._begin, Instrumentation._finish = self._saved  # type: ignore[method-assign]

    def time_emit(self, handle: Instrumentation, producer: MetricsProducer) -> None:
        clock = time.perf_counter_ns
        emit, emit_ns = producer.emit, self.emit_ns

        class TimedEmitter:
            def emit(self, **fields: Any) -> bool:
                t0 = clock()
                accepted = emit(**fields)
                emit_ns.append(clock() - t0)
                return accepted

        handle._producer = TimedEmitter()  # type: ignore[assignment]


def _bench_sync(lab: RemoteLab, rounds: int, per_round: int) -> dict[str, Any]:
    counter = [0]
    producer = _producer(counter)
    fast = RetryPolicy(base_delay=0.01)
    plain = ProxyWhirl(proxies=[_proxy(lab)], retry_policy=fast, bootstrap=False)
    measured = ProxyWhirl(proxies=[_proxy(lab)], retry_policy=fast, bootstrap=False)
    handle = instrument(measured, producer, pool="bench")
    url = lab.target_url("/ok")
    for rotator in (plain, measured):  # connections, clients and caches warm
        for _ in range(50):
            rotator.get(url)
    handle.uninstrument()
    off_ns: list[int] = []
    on_ns: list[int] = []
    clock = time.perf_counter_ns
    with _Sampler() as sampler:
        handle = instrument(measured, producer, pool="bench")
        sampler.time_emit(handle, producer)
        for i in range(rounds * per_round):
            order = [(plain, off_ns), (measured, on_ns)]
            if i % 2:
                order.reverse()
            for rotator, samples in order:
                t0 = clock()
                rotator.get(url)
                samples.append(clock() - t0)
    producer.flush(timeout_s=30.0)
    stats = producer.stats()
    producer.close()
    plain.__exit__(None, None, None)
    measured.__exit__(None, None, None)
    return _report(off_ns, on_ns, sampler, stats.emitted, stats.rejected)


async def _bench_async(lab: RemoteLab, rounds: int, per_round: int) -> dict[str, Any]:
    counter = [0]
    producer = _producer(counter)
    fast = RetryPolicy(base_delay=0.01)
    plain = AsyncProxyWhirl(proxies=[_proxy(lab)], retry_policy=fast, bootstrap=False)
    measured = AsyncProxyWhirl(proxies=[_proxy(lab)], retry_policy=fast, bootstrap=False)
    url = lab.target_url("/ok")
    async with plain, measured:
        handle = instrument(measured, producer, pool="bench")
        for rotator in (plain, measured):
            for _ in range(50):
                await rotator.get(url)
        handle.uninstrument()
        off_ns: list[int] = []
        on_ns: list[int] = []
        clock = time.perf_counter_ns
        with _Sampler() as sampler:
            handle = instrument(measured, producer, pool="bench")
            sampler.time_emit(handle, producer)
            for i in range(rounds * per_round):
                order = [(plain, off_ns), (measured, on_ns)]
                if i % 2:
                    order.reverse()
                for rotator, samples in order:
                    t0 = clock()
                    await rotator.get(url)
                    samples.append(clock() - t0)
    await producer.aflush(timeout_s=30.0)
    stats = producer.stats()
    producer.close()
    return _report(off_ns, on_ns, sampler, stats.emitted, stats.rejected)


def _report(
    off_ns: list[int], on_ns: list[int], sampler: _Sampler, emitted: int, rejected: int
) -> dict[str, Any]:
    off, on = _summary(off_ns), _summary(on_ns)
    begin, finish, emit = (
        _summary(sampler.begin_ns),
        _summary(sampler.finish_ns),
        _summary(sampler.emit_ns),
    )
    own_p50_us = begin["p50_us"] + finish["p50_us"]
    return {
        "request_off": off,
        "request_on": on,
        "added_p50_us": on["p50_us"] - off["p50_us"],
        "added_p50_percent": 100.0 * (on["p50_us"] - off["p50_us"]) / off["p50_us"],
        "in_request_begin": begin,
        "in_request_finish": finish,
        "in_request_emit": emit,
        "in_request_begin_plus_finish_p50_us": own_p50_us,
        "in_request_begin_plus_finish_percent_of_p50_request": 100.0 * own_p50_us / off["p50_us"],
        "producer_emitted": emitted,
        "producer_rejected": rejected,
    }


class _StubRotator(ProxyWhirl):
    """ProxyWhirl's request method replaced by what it does with our seams, nothing else."""

    def __init__(self, proxy: Proxy) -> None:
        super().__init__(proxies=[proxy], bootstrap=False)
        self._response = httpx.Response(
            200, content=b"ok", request=httpx.Request("GET", "http://t/")
        )
        self._request = httpx.Request("GET", "http://t/")

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        self.strategy.select(self.pool)
        auth = kwargs.get("auth")
        if isinstance(auth, httpx.Auth):
            flow = auth.sync_auth_flow(self._request)
            next(flow)
            with contextlib.suppress(StopIteration):
                flow.send(self._response)
        return self._response


def _bench_isolated(lab: RemoteLab, calls: int) -> dict[str, Any]:
    counter = [0]
    producer = _producer(counter)
    bare = _StubRotator(_proxy(lab))
    instrumented = _StubRotator(_proxy(lab))
    instrument(instrumented, producer, pool="bench")
    clock = time.perf_counter_ns

    def run(call: Callable[[str], Any]) -> list[int]:
        samples = [0] * calls
        for i in range(calls):
            t0 = clock()
            call("http://t/")
            samples[i] = clock() - t0
        return samples

    run(bare.get)
    run(instrumented.get)
    bare_ns, on_ns = run(bare.get), run(instrumented.get)
    producer.flush(timeout_s=30.0)
    producer.close()
    b, o = _summary(bare_ns), _summary(on_ns)
    return {
        "stub_bare": b,
        "stub_instrumented": o,
        "integration_cost_p50_us": o["p50_us"] - b["p50_us"],
        "integration_cost_mean_us": o["mean_us"] - b["mean_us"],
    }


def _timer_overhead_ns() -> float:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(100_000):
        t0 = clock()
        samples.append(clock() - t0)
    return float(statistics.median(samples))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="x per-round = request pairs")
    parser.add_argument("--per-round", type=int, default=100)
    parser.add_argument("--isolated-calls", type=int, default=50_000)
    ns = parser.parse_args()
    loguru_logger.disable("proxywhirl")
    report: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "proxywhirl_logging": "disabled (conservative: cheaper requests, larger percentages)",
        "timer_overhead_ns_median": _timer_overhead_ns(),
        "rounds": ns.rounds,
        "requests_per_round_per_side": ns.per_round,
    }
    lab = RemoteLab()
    try:
        report["sync"] = _bench_sync(lab, ns.rounds, ns.per_round)
        report["async"] = asyncio.run(_bench_async(lab, ns.rounds, ns.per_round))
        report["isolated"] = _bench_isolated(lab, ns.isolated_calls)
    finally:
        lab.close()
    iso = report["isolated"]
    for mode in ("sync", "async"):
        report[mode]["isolated_cost_percent_of_p50_request"] = (
            100.0 * iso["integration_cost_p50_us"] / report[mode]["request_off"]["p50_us"]
        )

    print(f"timer overhead (median): {report['timer_overhead_ns_median']:.0f} ns")
    print(f"{'per request':<34}{'p50 us':>10}{'p90 us':>10}{'p99 us':>10}{'mean us':>10}")
    for mode in ("sync", "async"):
        for key in (
            "request_off",
            "request_on",
            "in_request_begin",
            "in_request_finish",
            "in_request_emit",
        ):
            r = report[mode][key]
            print(
                f"{mode + ' ' + key:<34}{r['p50_us']:>10.1f}{r['p90_us']:>10.1f}"
                f"{r['p99_us']:>10.1f}{r['mean_us']:>10.1f}"
            )
    for key in ("stub_bare", "stub_instrumented"):
        r = iso[key]
        print(
            f"{'isolated ' + key:<34}{r['p50_us']:>10.1f}{r['p90_us']:>10.1f}"
            f"{r['p99_us']:>10.1f}{r['mean_us']:>10.1f}"
        )
    for mode in ("sync", "async"):
        r = report[mode]
        print(
            f"{mode}: end-to-end added p50 {r['added_p50_us']:+.1f} us "
            f"({r['added_p50_percent']:+.2f}%, noise-bound); own code in the request "
            f"{r['in_request_begin_plus_finish_p50_us']:.1f} us "
            f"({r['in_request_begin_plus_finish_percent_of_p50_request']:.2f}%), of which emit "
            f"p50 {r['in_request_emit']['p50_us']:.1f} us; isolated full cost "
            f"{iso['integration_cost_p50_us']:.1f} us "
            f"({r['isolated_cost_percent_of_p50_request']:.2f}% of a p50 request)"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
