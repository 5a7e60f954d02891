"""What benchmarks/emit_cost.py times ``emit()`` against, with ``emit()``'s arguments: the
prometheus-client peer and the machine's floor.

The peer is what ProxyWhirl users would do per request otherwise: a labelled ``Counter.inc`` plus
a labelled ``Histogram.observe``. The floor is a call that only spins in Python for as long as
``emit()``'s median call (:func:`spin_iterations` calibrates it), allocating nothing, locking
nothing, sending nothing. Part of benchmarks/emit_cost.py.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram

from benchmarks.emit_cost_timing import Args, least_median_ns
from producer import Outcome

__all__ = ["prometheus_call", "spin_call", "spin_iterations"]


def prometheus_call() -> Callable[..., object]:
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


def spin_call(iterations: int) -> Callable[..., object]:
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


def spin_iterations(target_ns: float, args: list[Args]) -> int:
    """Spin iterations whose median call lasts about ``target_ns`` (timed like the others)."""
    base_ns = least_median_ns(spin_call(0), args)
    probe = 200
    per_iteration_ns = (least_median_ns(spin_call(probe), args) - base_ns) / probe
    return max(0, round((target_ns - base_ns) / max(per_iteration_ns, 1e-3)))
