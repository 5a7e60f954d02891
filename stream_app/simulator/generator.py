"""The fleet simulator: a deterministic, seedable generator of request events in virtual time.

Event time is cut into slots of :data:`SLOT_MS` counted from the origin. Each (slot, scope) has
its own random stream seeded from ``(seed, slot, scope)``, so the output for a given seed,
scenario and origin does not depend on how the time range is chunked: ``events_between(a, c)``
is ``events_between(a, b)`` followed by ``events_between(b, c)``, and an incident in one pool
leaves every other pool's events identical. Within a segment of constant conditions
(:mod:`stream_app.simulator.effects`) arrivals are a Poisson process (exponential gaps) at the
scope's rate: pool rate x region share x diurnal factor x traffic multipliers.

Delivery order: without disorder (the default) events come in event-time order. With
``delivery.jitter_ms`` / ``delayed_fraction`` each event also gets a delivery time (from a
separate random stream, so the events themselves do not change) and the stream is ordered and
selected by delivery time: ``events_between(start, end)`` yields the events *delivered* in
``[start, end)``, each carrying its own (earlier) ``ts_ms``.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import TypedDict

from schemas.events import Outcome
from schemas.wire import WireEvent
from stream_app.simulator.effects import IncidentSchedule
from stream_app.simulator.fleet import FleetModel
from stream_app.simulator.scenario import Scenario
from stream_app.simulator.slots import SLOT_MS, Record, SlotGenerator

__all__ = ["SLOT_MS", "EmitParams", "FleetSimulator", "Record"]


class EmitParams(TypedDict):
    """Keyword arguments of ``MetricsProducer.emit`` for one event."""

    pool: str
    region: str
    proxy_id: str | None
    outcome: Outcome
    latency_ms: float
    status_code: int | None
    bytes_in: int
    bytes_out: int
    attempts: int
    target_domain: str | None
    ts_ms: int


class FleetSimulator:
    """A simulated fleet under a scenario, deterministic for ``seed`` and ``origin_ms``.

    ``origin_ms`` (epoch ms) is the scenario's time zero: incidents start at offsets from it.
    Several iterators may be interleaved in one thread; use one simulator per thread.
    """

    def __init__(self, scenario: Scenario, seed: int = 0, *, origin_ms: int = 0) -> None:
        if not 0 <= seed < 1 << 63:
            raise ValueError(f"seed must be within [0, 2**63), got {seed!r}")
        if origin_ms < 0:
            raise ValueError(f"origin_ms must be >= 0, got {origin_ms!r}")
        self.scenario = scenario
        self.seed = seed
        self.origin_ms = origin_ms
        self.fleet = FleetModel(scenario.fleet, seed)
        self.schedule = IncidentSchedule(scenario.incidents, self.fleet, origin_ms, seed)
        self._slots = SlotGenerator(scenario, seed, origin_ms, self.fleet, self.schedule)
        # Event ids are unique per (seed, origin): "sim<seed>-<origin>-<slot>-<scope>-<seq>" (hex).
        self._id_prefix = f"sim{seed:x}-{origin_ms:x}-"

    # ------------------------------------------------------------------ public API

    @property
    def scopes(self) -> list[tuple[str, str]]:
        """Every (pool, region) of the fleet, in scope-index order."""
        return [(s.pool, s.region) for s in self.fleet.scopes]

    def proxy_id(self, pool: str, region: str, index: int) -> str:
        """The id of proxy ``index`` of ``pool`` in ``region``."""
        scope = self.fleet.scope(pool, region)
        if not 0 <= index < scope.proxy_count:
            raise IndexError(f"{pool}/{region} has {scope.proxy_count} proxies, not {index + 1}")
        return self.fleet.proxy(scope, index).proxy_id

    def proxy_ids(self, pool: str, region: str) -> list[str]:
        """All proxy ids of ``pool`` in ``region``, by index."""
        scope = self.fleet.scope(pool, region)
        return [self.fleet.proxy(scope, i).proxy_id for i in range(scope.proxy_count)]

    def bad_proxy_ids(self, pool: str, region: str) -> frozenset[str]:
        """Ids of the scope's chronically bad proxies."""
        scope = self.fleet.scope(pool, region)
        return frozenset(self.fleet.proxy(scope, i).proxy_id for i in scope.bad_proxies)

    def failing_proxy_ids(self, incident_index: int) -> frozenset[str]:
        """Ids of the proxies that fail in ``proxy_failure`` incident ``incident_index``."""
        ids: set[str] = set()
        for (pool, region), indices in self.schedule.failing_proxies(incident_index).items():
            scope = self.fleet.scope(pool, region)
            ids.update(self.fleet.proxy(scope, i).proxy_id for i in indices)
        return frozenset(ids)

    def events_between(
        self,
        start_ms: int,
        end_ms: int,
        *,
        first_ts_ms: int | None = None,
        ts_shift_ms: int = 0,
    ) -> Iterator[WireEvent]:
        """The events delivered in ``[start_ms, end_ms)``, in delivery order.

        ``first_ts_ms``: see :meth:`records`. ``ts_shift_ms`` is added to every ``ts_ms``. (A
        :class:`~stream_app.simulator.realtime.RealtimeReport` replays what a real-time run
        emitted with both.)
        """
        prefix = self._id_prefix
        origin = self.origin_ms
        for r in self.records(start_ms, end_ms, first_ts_ms=first_ts_ms):
            ts = r[1]
            yield WireEvent(
                event_id=f"{prefix}{(ts - origin) // SLOT_MS:x}-{r[2]:x}-{r[3]:x}",
                ts_ms=ts + ts_shift_ms,
                pool=r[4],
                region=r[5],
                outcome=r[7],
                latency_ms=r[8],
                source_host=r[14],
                proxy_id=r[6],
                status_code=r[9],
                bytes_in=r[10],
                bytes_out=r[11],
                attempts=r[12],
                target_domain=r[13],
            )

    def params_between(
        self, start_ms: int, end_ms: int, *, first_ts_ms: int | None = None
    ) -> Iterator[EmitParams]:
        """``MetricsProducer.emit`` keyword arguments of the same events as ``events_between``."""
        for r in self.records(start_ms, end_ms, first_ts_ms=first_ts_ms):
            yield EmitParams(
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
                ts_ms=r[1],
            )

    def records(
        self, start_ms: int, end_ms: int | None = None, *, first_ts_ms: int | None = None
    ) -> Iterator[Record]:
        """Raw records delivered in ``[start_ms, end_ms)`` (open-ended when ``end_ms`` is None).

        ``first_ts_ms``: the fleet starts then; events with an earlier event time, which would
        otherwise arrive late inside the range, do not exist (and are not generated).
        """
        if end_ms is not None and end_ms <= start_ms:
            return
        lateness_ms = self.scenario.delivery.max_lateness_ms
        earliest_ms = start_ms - lateness_ms
        if first_ts_ms is not None and first_ts_ms > earliest_ms:
            earliest_ms = first_ts_ms
        else:
            first_ts_ms = None
        slot = (earliest_ms - self.origin_ms) // SLOT_MS
        if lateness_ms == 0:
            yield from self._in_order(slot, start_ms, end_ms, first_ts_ms)
        else:
            yield from self._by_delivery(slot, start_ms, end_ms, first_ts_ms)

    # ------------------------------------------------------------------ ordering

    def _slot_batch(self, slot: int, first_ts_ms: int | None) -> list[Record]:
        batch = self._slots.slot_records(slot)
        if first_ts_ms is not None and self.origin_ms + slot * SLOT_MS < first_ts_ms:
            batch = [r for r in batch if r[1] >= first_ts_ms]
        batch.sort()
        return batch

    def _in_order(
        self, slot: int, start_ms: int, end_ms: int | None, first_ts_ms: int | None
    ) -> Iterator[Record]:
        origin = self.origin_ms
        while end_ms is None or origin + slot * SLOT_MS < end_ms:
            batch = self._slot_batch(slot, first_ts_ms)
            slot_start = origin + slot * SLOT_MS
            if slot_start >= start_ms and (end_ms is None or slot_start + SLOT_MS <= end_ms):
                yield from batch
            else:
                for r in batch:
                    if r[0] >= start_ms and (end_ms is None or r[0] < end_ms):
                        yield r
            slot += 1

    def _by_delivery(
        self, slot: int, start_ms: int, end_ms: int | None, first_ts_ms: int | None
    ) -> Iterator[Record]:
        origin = self.origin_ms
        pending: list[Record] = []
        while True:
            pending += self._slot_batch(slot, first_ts_ms)
            pending.sort()  # two sorted runs: a linear merge
            slot += 1
            # Records of later slots are delivered at or after their event time, so everything
            # delivered before the next slot's start is final.
            horizon = origin + slot * SLOT_MS
            ready = bisect.bisect_left(pending, (horizon,))
            if end_ms is not None and horizon >= end_ms:
                ready = bisect.bisect_left(pending, (end_ms,))
            first = (
                0
                if pending[:1] and pending[0][0] >= start_ms
                else bisect.bisect_left(pending, (start_ms,), 0, ready)
            )
            yield from pending[first:ready]
            del pending[:ready]
            if end_ms is not None and horizon >= end_ms:
                return
