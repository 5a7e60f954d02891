"""What the scripted incidents do to one scope over a span of event time.

:class:`IncidentSchedule` compiles a scenario's incidents against the fleet once; the generator
then asks, per time slot and scope, for the slot cut into segments of constant
:class:`Conditions` (cuts fall on incident starts and ends and on flap phase changes), so every
incident boundary is exact to the millisecond. Overlap rules are listed in
:mod:`stream_app.simulator.incidents`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from stream_app.simulator.fleet import FleetModel, ScopeModel
from stream_app.simulator.incidents import (
    ErrorSpike,
    Flap,
    Incident,
    LatencyMultiplier,
    ProxyFailure,
    Silence,
    TrafficMultiplier,
)
from stream_app.simulator.outcomes import ErrorMode, compile_error_mode

__all__ = ["NORMAL", "Conditions", "IncidentSchedule", "Segment"]


@dataclass(frozen=True, slots=True)
class Conditions:
    """How one scope behaves during one segment."""

    rate_factor: float = 1.0
    """Multiplies the request rate; 0 when the scope is silent."""
    latency_factor: float = 1.0
    error_mode: ErrorMode | None = None
    """Replaces every proxy's own error probability and the pool's mix (an error spike)."""
    failing: dict[int, ErrorMode] | None = field(default=None, hash=False)
    """Proxy index -> error mode of a failing proxy (wins over ``error_mode``)."""


NORMAL = Conditions()
"""No incident in effect."""

Segment = tuple[int, int, Conditions]
"""``(start_ms, end_ms, conditions)``: half-open span of event time."""


@dataclass(frozen=True, slots=True)
class _Scheduled:
    index: int
    incident: Incident
    start_ms: int
    end_ms: int
    mode: ErrorMode | None
    failing: frozenset[int]


class IncidentSchedule:
    """The scenario's incidents, indexed by scope."""

    def __init__(
        self, incidents: list[Incident], fleet: FleetModel, origin_ms: int, seed: int
    ) -> None:
        self._origin_ms = origin_ms
        self._by_scope: list[list[_Scheduled]] = [[] for _ in fleet.scopes]
        self._failing: dict[int, dict[tuple[str, str], frozenset[int]]] = {}
        for i, incident in enumerate(incidents):
            start_ms, end_ms = incident.start_ms(origin_ms), incident.end_ms(origin_ms)
            if end_ms <= start_ms:
                continue
            for scope in fleet.scopes:
                if not incident.covers(scope.pool, scope.region):
                    continue
                failing = self._failing_indices(incident, i, scope, fleet, seed)
                if failing:
                    self._failing.setdefault(i, {})[(scope.pool, scope.region)] = failing
                entry = _Scheduled(
                    index=i,
                    incident=incident,
                    start_ms=start_ms,
                    end_ms=end_ms,
                    mode=_error_mode(incident, scope),
                    failing=failing,
                )
                self._by_scope[scope.index].append(entry)

    @staticmethod
    def _failing_indices(
        incident: Incident, index: int, scope: ScopeModel, fleet: FleetModel, seed: int
    ) -> frozenset[int]:
        if not isinstance(incident, ProxyFailure):
            return frozenset()
        if incident.proxy_index is not None:
            return frozenset({incident.proxy_index})
        fraction = incident.fraction or 0.0
        count = max(1, round(fraction * scope.proxy_count))
        return fleet.choose_proxies(scope, count, seed * (1 << 16) + index)

    def failing_proxies(self, incident_index: int) -> dict[tuple[str, str], frozenset[int]]:
        """(pool, region) -> failing proxy indices of a ``proxy_failure`` incident."""
        return dict(self._failing.get(incident_index, {}))

    def segments(self, scope_index: int, start_ms: int, end_ms: int) -> list[Segment]:
        """``[start_ms, end_ms)`` cut into spans of constant conditions, in time order."""
        active = [
            s for s in self._by_scope[scope_index] if s.start_ms < end_ms and s.end_ms > start_ms
        ]
        if not active:
            return [(start_ms, end_ms, NORMAL)]
        cuts = {start_ms, end_ms}
        for s in active:
            for t in (s.start_ms, s.end_ms):
                if start_ms < t < end_ms:
                    cuts.add(t)
            if isinstance(s.incident, Flap):
                period_ms = s.incident.period_ms
                lo, hi = max(start_ms, s.start_ms), min(end_ms, s.end_ms)
                t = s.start_ms + -(-(lo - s.start_ms) // period_ms) * period_ms
                while t < hi:
                    if t > start_ms:
                        cuts.add(t)
                    t += period_ms
        points = sorted(cuts)
        return [(a, b, self._conditions(active, a)) for a, b in itertools.pairwise(points)]

    def _conditions(self, active: list[_Scheduled], t_ms: int) -> Conditions:
        rate = 1.0
        latency = 1.0
        silent = False
        override: ErrorMode | None = None
        failing: dict[int, ErrorMode] = {}
        for s in active:
            if not s.start_ms <= t_ms < s.end_ms:
                continue
            incident = s.incident
            if isinstance(incident, TrafficMultiplier):
                rate *= incident.factor
            elif isinstance(incident, LatencyMultiplier):
                latency *= incident.factor
            elif isinstance(incident, Silence):
                silent = True
            elif isinstance(incident, Flap):
                if incident.is_down(t_ms, self._origin_ms):
                    if incident.effect == "silence":
                        silent = True
                    elif s.mode is not None and (
                        override is None or s.mode.probability >= override.probability
                    ):
                        override = s.mode
            elif isinstance(incident, ErrorSpike):
                if s.mode is not None and (
                    override is None or s.mode.probability >= override.probability
                ):
                    override = s.mode
            elif isinstance(incident, ProxyFailure) and s.mode is not None:
                for proxy_index in s.failing:
                    failing[proxy_index] = s.mode
        if silent:
            return Conditions(rate_factor=0.0)
        if rate == 1.0 and latency == 1.0 and override is None and not failing:
            return NORMAL
        return Conditions(
            rate_factor=rate,
            latency_factor=latency,
            error_mode=override,
            failing=failing or None,
        )


def _error_mode(incident: Incident, scope: ScopeModel) -> ErrorMode | None:
    if isinstance(incident, ErrorSpike | Flap):
        if incident.outcomes is None:
            return ErrorMode(
                probability=incident.error_rate,
                cumulative=scope.error_mode.cumulative,
                profiles=scope.error_mode.profiles,
            )
        return compile_error_mode(incident.error_rate, incident.outcomes)
    if isinstance(incident, ProxyFailure):
        return compile_error_mode(incident.error_rate, incident.outcomes)
    return None
