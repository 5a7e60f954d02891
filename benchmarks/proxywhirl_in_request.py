"""Where the ProxyWhirl integration's time goes inside real requests: its own code around
ProxyWhirl's call, ``Instrumentation._settle`` and the producer call within it, sampled with
``perf_counter_ns``. Part of benchmarks/proxywhirl_overhead.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from proxywhirl import ProxyWhirl

from benchmarks.proxywhirl_lab import (
    WARMUP,
    RemoteLab,
    bench_producer,
    plain_rotator,
    summary,
)
from producer import MetricsProducer
from producer.integrations.proxywhirl import Instrumentation, instrument

__all__ = ["Sampler", "in_request"]


class Sampler:
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

    def __enter__(self) -> Sampler:
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
        # _settle hands the common request's event to the producer's emit_deferred().
        emit, emit_ns = handle._emit_common, self.emit_ns

        def timed_emit(*args: Any) -> bool:
            t0 = clock()
            accepted = emit(*args)
            emit_ns.append(clock() - t0)
            return accepted

        handle._emit_common = timed_emit
        instrumented, hook_ns = rotator.get, self.hook_ns

        def call(url: str) -> Any:
            t0 = clock()
            response = instrumented(url)
            hook_ns.append(clock() - t0 - sampler._inner_ns)
            return response

        return call

    def report(self) -> dict[str, Any]:
        return {
            "hook_around_call": summary(self.hook_ns),
            "settle": summary(self.settle_ns),
            "emit_within_settle": summary(self.emit_ns),
        }


def in_request(lab: RemoteLab, samples: int) -> dict[str, Any]:
    url = lab.target_url("/ok")
    producer = bench_producer()
    rotator = plain_rotator(lab.healthy)
    for _ in range(WARMUP):
        rotator.get(url)
    with Sampler() as sampler:
        call = sampler.instrument(rotator, producer)
        for _ in range(samples):
            call(url)
    producer.close()
    rotator.__exit__(None, None, None)
    return sampler.report()
