"""The shared parts of the ProxyWhirl benchmarks (benchmarks/proxywhirl_overhead.py,
benchmarks/proxywhirl_isolated.py): the loopback lab in a child process, the proxy and the
producer every scenario uses, and the minimal prometheus-client wrapper they are compared with.
"""

from __future__ import annotations

import functools
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from prometheus_client import CollectorRegistry, Counter, Histogram  # noqa: E402
from proxywhirl import Proxy, ProxyWhirl  # noqa: E402
from proxywhirl.retry import RetryPolicy  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from producer import InProcessTransport, MetricsProducer, ProducerSettings  # noqa: E402
from tests.support.proxies import LabProxy  # noqa: E402

__all__ = [
    "FAST_RETRIES",
    "ROOT",
    "WARMUP",
    "RemoteLab",
    "bench_producer",
    "lab_proxy",
    "plain_rotator",
    "prometheus_wrapped",
    "summary",
]

FAST_RETRIES = RetryPolicy(base_delay=0.01)
WARMUP = 200


def summary(samples_ns: list[int]) -> dict[str, float]:
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


def lab_proxy(healthy: LabProxy) -> Proxy:
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


def bench_producer() -> MetricsProducer:
    settings = ProducerSettings(
        source_host="bench-host",
        fleet_key="benchmark-fleet-key",
        max_buffer_events=1_000_000,
        close_at_exit=False,
    )
    return MetricsProducer(settings, InProcessTransport(lambda pool, payload: None))


def prometheus_wrapped(rotator: ProxyWhirl) -> None:
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


def plain_rotator(healthy: LabProxy) -> ProxyWhirl:
    return ProxyWhirl(proxies=[lab_proxy(healthy)], retry_policy=FAST_RETRIES, bootstrap=False)
