"""Drive a :class:`~stream_app.simulator.generator.FleetSimulator` against the wall clock.

``run_realtime`` advances virtual time with the event loop's monotonic clock in small ticks and
calls ``emit(**kwargs)`` (``MetricsProducer.emit``'s keywords) for every record delivered up to
"now". Virtual time ``v`` maps to wall time ``v + shift_ms`` (``shift_ms`` is fixed at start so
that the starting virtual time is the wall clock at start); emitted ``ts_ms`` are shifted the same
way. The fleet starts with the run: no event has an event time before the virtual start (so a
scenario with delayed deliveries does not first generate, and emit, events from before it).
What was emitted is exactly :meth:`RealtimeReport.emitted_events`: the ground truth to compare
stored aggregates with.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from schemas.events import Outcome
from schemas.wire import WireEvent
from stream_app.simulator.generator import FleetSimulator, Record

__all__ = ["EmitFn", "RealtimeReport", "run_realtime"]

logger = logging.getLogger(__name__)


class EmitFn(Protocol):
    """``MetricsProducer.emit`` as the simulator calls it (keywords only; result ignored)."""

    def __call__(
        self,
        *,
        pool: str,
        region: str,
        proxy_id: str | None,
        outcome: Outcome,
        latency_ms: float,
        status_code: int | None,
        bytes_in: int,
        bytes_out: int,
        attempts: int,
        target_domain: str | None,
        ts_ms: int,
    ) -> object: ...


@dataclass(slots=True)
class RealtimeReport:
    """Progress of a real-time run; updated after every tick, final when the run returns."""

    virtual_start_ms: int = 0
    virtual_end_ms: int = 0
    """Everything delivered in ``[virtual_start_ms, virtual_end_ms)`` has been emitted."""
    shift_ms: int = 0
    """Emitted ``ts_ms`` = virtual event time + ``shift_ms``."""
    emitted: int = 0
    ticks: int = 0
    late_ticks: int = 0
    """Ticks that started more than one tick behind schedule (the process was starved)."""
    max_lag_ms: float = 0.0
    """Largest delay of a tick's start behind its schedule."""
    finished: bool = False
    """True when ``duration_s`` was reached, False when stopped early (or still running)."""

    def emitted_events(self, sim: FleetSimulator) -> Iterator[WireEvent]:
        """Exactly the events the run emitted (so far), in order, with their wall-clock ts."""
        return sim.events_between(
            self.virtual_start_ms,
            self.virtual_end_ms,
            first_ts_ms=self.virtual_start_ms,
            ts_shift_ms=self.shift_ms,
        )


async def _wait(stop: asyncio.Event, delay_s: float) -> None:
    if delay_s <= 0:
        await asyncio.sleep(0)
        return
    try:
        async with asyncio.timeout(delay_s):
            await stop.wait()
    except TimeoutError:
        pass


async def run_realtime(
    sim: FleetSimulator,
    emit: EmitFn,
    *,
    duration_s: float | None = None,
    stop: asyncio.Event,
    start_ms: int | None = None,
    tick_ms: int = 50,
    yield_every: int = 2_000,
    report: RealtimeReport | None = None,
) -> RealtimeReport:
    """Emit ``sim``'s events paced by the wall clock until ``duration_s`` or ``stop``.

    ``start_ms`` is the virtual start (default: the simulator's origin). Every ``tick_ms`` the
    records delivered since the previous tick are emitted, yielding to the event loop every
    ``yield_every`` calls. Pass your own ``report`` to watch progress while it runs.
    """
    if tick_ms <= 0:
        raise ValueError(f"tick_ms must be > 0, got {tick_ms!r}")
    if duration_s is not None and duration_s <= 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s!r}")
    if yield_every <= 0:
        raise ValueError(f"yield_every must be > 0, got {yield_every!r}")
    loop = asyncio.get_running_loop()
    report = report if report is not None else RealtimeReport()
    virtual_start = sim.origin_ms if start_ms is None else start_ms
    virtual_end = None if duration_s is None else virtual_start + round(duration_s * 1000)
    started = loop.time()
    shift = time.time_ns() // 1_000_000 - virtual_start
    report.virtual_start_ms = report.virtual_end_ms = virtual_start
    report.shift_ms = shift
    report.finished = False
    tick_s = tick_ms / 1000.0
    records = sim.records(virtual_start, virtual_end, first_ts_ms=virtual_start)
    held: list[Record] = []  # the first record not yet due (at most one)
    logger.info(
        "simulator: real-time run from virtual %d (shift %d ms), duration %s s, %.0f req/s",
        virtual_start,
        shift,
        duration_s,
        sim.scenario.total_rate_per_s,
    )
    while True:
        now = loop.time()
        lag_ms = (now - (started + report.ticks * tick_s)) * 1000.0
        report.max_lag_ms = max(report.max_lag_ms, lag_ms)
        if lag_ms > tick_ms:
            report.late_ticks += 1
        target = virtual_start + int((now - started) * 1000.0)
        if virtual_end is not None and target > virtual_end:
            target = virtual_end
        since_yield = 0
        for r in itertools.chain(held, records) if held else records:
            if r[0] >= target:
                held = [r]
                break
            emit(
                pool=r[4],
                region=r[5],
                proxy_id=r[6],
                outcome=r[7],
                latency_ms=r[8],
                status_code=r[9],
                bytes_in=r[10],
                bytes_out=r[11],
                attempts=r[12],
                target_domain=r[13],
                ts_ms=r[1] + shift,
            )
            since_yield += 1
            if since_yield == yield_every:
                report.emitted += since_yield
                since_yield = 0
                await asyncio.sleep(0)
        else:
            held = []
        report.emitted += since_yield
        report.virtual_end_ms = target
        report.ticks += 1
        if virtual_end is not None and target >= virtual_end:
            report.finished = True
            break
        if stop.is_set():
            break
        await _wait(stop, started + report.ticks * tick_s - loop.time())
    logger.info(
        "simulator: real-time run ended after %d events, %d ticks (%d late, max lag %.0f ms)",
        report.emitted,
        report.ticks,
        report.late_ticks,
        report.max_lag_ms,
    )
    return report
