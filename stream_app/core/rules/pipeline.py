"""Health of the pipeline feeding the engine: when to hold rules and raise one alert instead.

The runtime reports a :class:`PipelineStatus` (consumer lag, sink state, watermark) whenever it
changes and at least every few seconds. The pipeline is *degraded* while, by the rules file's
``pipeline_health`` bounds:

- the consumer lag exceeds ``max_lag_ms``, or
- the sink is down (``hold_on_sink_down``), or
- the watermark (event time up to which windows have closed; the runtime advances it with the
  wall clock when the fleet is idle) is more than ``max_staleness_ms`` behind the wall clock.
  This is re-checked on every engine call, so a runtime that stops reporting becomes stale too.

A source host whose clock runs ahead (its events are dead-lettered as ``clock_skew``, see
:mod:`stream_app.core.record_time`) is reported in ``skewed_hosts``: the ``PipelineDegraded``
alert fires for it too and names the hosts, but no rule is held (the other hosts' data is
complete and on time).

While degraded, rules that hold (absence and rate rules by default, see
``hold_when_degraded``) make no transition for the affected scopes: pending alerts drop back to
inactive (the backlog replayed later cannot count twice towards ``for``), firing ones stay firing
with their keep-firing countdown reset, absence counters and baselines stand still. One
``PipelineDegraded`` alert fires once degraded for ``pipeline_health.for_s`` and resolves when
healthy again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.rules import PipelineHealthConfig
from stream_app.core.rules.scopes import ScopeRef


@dataclass(frozen=True, slots=True)
class PipelineStatus:
    """What the runtime knows about the pipeline right now."""

    lag_ms: int | None = None
    """How far behind the newest input the consumer is, in ms (None: unknown)."""
    sink_ok: bool = True
    """Whether aggregates are being stored (fleet-wide rules read them back)."""
    watermark_ms: int | None = None
    """Event time up to which windows have closed (None: not known yet)."""
    affected_pools: frozenset[str] | None = None
    """The pools whose data is delayed (None: all of them)."""
    skewed_hosts: frozenset[str] = frozenset()
    """Source hosts whose events were refused for clock skew lately (:class:`SkewTracker`)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "lag_ms": self.lag_ms,
            "sink_ok": self.sink_ok,
            "watermark_ms": self.watermark_ms,
            "affected_pools": None if self.affected_pools is None else sorted(self.affected_pools),
            "skewed_hosts": sorted(self.skewed_hosts),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineStatus:
        pools = data.get("affected_pools")
        return cls(
            lag_ms=None if data.get("lag_ms") is None else int(data["lag_ms"]),
            sink_ok=bool(data.get("sink_ok", True)),
            watermark_ms=None if data.get("watermark_ms") is None else int(data["watermark_ms"]),
            affected_pools=None if pools is None else frozenset(str(p) for p in pools),
            skewed_hosts=frozenset(str(h) for h in data.get("skewed_hosts", ())),
        )


class PipelineHealth:
    """The last reported status and since when the pipeline has been degraded.

    ``reasons`` are everything the pipeline-health alert reports; ``degraded`` (rules hold) is
    True only for the reasons that delay data (lag, sink down, staleness), not for clock skew.
    """

    __slots__ = ("degraded_since_ms", "holding", "reasons", "status")

    def __init__(self) -> None:
        self.status: PipelineStatus | None = None
        self.degraded_since_ms: int | None = None
        self.reasons: tuple[str, ...] = ()
        self.holding = False

    @property
    def degraded(self) -> bool:
        return self.holding

    def report(self, status: PipelineStatus) -> None:
        self.status = status

    def assess(self, now_ms: int, config: PipelineHealthConfig) -> tuple[str, ...]:
        """Recompute the reasons for being degraded at ``now_ms`` (empty: healthy)."""
        reasons: list[str] = []
        status = self.status
        if status is not None:
            if status.lag_ms is not None and status.lag_ms > config.max_lag_ms:
                reasons.append(f"consumer lag {status.lag_ms} ms > {config.max_lag_ms} ms")
            if not status.sink_ok and config.hold_on_sink_down:
                reasons.append("aggregate sink down")
            if status.watermark_ms is not None:
                behind_ms = now_ms - status.watermark_ms
                if behind_ms > config.max_staleness_ms:
                    limit_ms = config.max_staleness_ms
                    reasons.append(f"data stale: watermark {behind_ms} ms behind > {limit_ms} ms")
        self.holding = bool(reasons)
        if status is not None and status.skewed_hosts:
            hosts = sorted(status.skewed_hosts)
            named = ", ".join(hosts[:10]) + (", ..." if len(hosts) > 10 else "")
            reasons.append(
                f"clock skew: events of host(s) {named} are ahead of their record time "
                "(dead-lettered as clock_skew; check NTP on those hosts)"
            )
        self.reasons = tuple(reasons)
        if not reasons:
            self.degraded_since_ms = None
        elif self.degraded_since_ms is None:
            self.degraded_since_ms = now_ms
        return self.reasons

    def worst_delay_ms(self, now_ms: int) -> float | None:
        """The larger of lag and watermark staleness (the value of the pipeline alert)."""
        status = self.status
        if status is None:
            return None
        delays = [float(status.lag_ms)] if status.lag_ms is not None else []
        if status.watermark_ms is not None:
            delays.append(float(now_ms - status.watermark_ms))
        return max(delays) if delays else None

    def affects(self, scope: ScopeRef) -> bool:
        """Whether rules for ``scope`` hold now (region and fleet scopes span every pool)."""
        if not self.reasons:
            return False
        pools = self.status.affected_pools if self.status is not None else None
        if pools is None or scope.spans_pools():
            return True
        return scope.pool in pools

    def stale_at_ms(self, config: PipelineHealthConfig) -> int | None:
        """Wall clock at which the current watermark becomes stale (for the next deadline)."""
        if self.status is None or self.status.watermark_ms is None:
            return None
        return self.status.watermark_ms + config.max_staleness_ms + 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": None if self.status is None else self.status.to_dict(),
            "degraded_since_ms": self.degraded_since_ms,
            "reasons": list(self.reasons),
            "holding": self.holding,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineHealth:
        health = cls()
        status = data.get("status")
        health.status = None if status is None else PipelineStatus.from_dict(status)
        since = data.get("degraded_since_ms")
        health.degraded_since_ms = None if since is None else int(since)
        health.reasons = tuple(str(r) for r in data.get("reasons", ()))
        health.holding = bool(data.get("holding", bool(health.reasons)))
        return health


class SkewTracker:
    """Which hosts had events refused for clock skew within the last ``recent_ms``.

    Fed the runtime's cumulative ``clock_skew`` counts per host (they only grow); a host is
    skewed from the report its count grew in until ``recent_ms`` after it last grew.
    """

    __slots__ = ("_counts", "_last_grew_ms", "recent_ms")

    def __init__(self, recent_ms: int = 300_000) -> None:
        self.recent_ms = recent_ms
        self._counts: dict[str, int] = {}
        self._last_grew_ms: dict[str, int] = {}

    def update(self, counts: dict[str, int], now_ms: int) -> frozenset[str]:
        """Take the current counts; return the hosts skewed now."""
        for host, count in counts.items():
            if count > self._counts.get(host, 0):
                self._last_grew_ms[host] = now_ms
            self._counts[host] = count
        horizon = now_ms - self.recent_ms
        for host in [h for h, at in self._last_grew_ms.items() if at < horizon]:
            del self._last_grew_ms[host]
        return frozenset(self._last_grew_ms)


PIPELINE_RULE_ID = "pipeline-health"
"""The ``rule_id`` label of the pipeline-health alert (reserved: no rule may use it)."""


def pipeline_alert_labels(config: PipelineHealthConfig) -> dict[str, str]:
    """The label set of the one pipeline-health alert."""
    labels = {
        "alertname": config.alertname,
        "severity": config.severity.value,
        "rule_id": PIPELINE_RULE_ID,
    }
    labels.update(config.labels)
    return labels


def pipeline_annotations(config: PipelineHealthConfig, health: PipelineHealth) -> dict[str, str]:
    """Summary, description, runbook and next steps of the pipeline-health alert."""
    reasons = "; ".join(health.reasons) or "recovered"
    pools = health.status.affected_pools if health.status is not None else None
    if pools is None:
        affected = "all pools"
    else:
        names = sorted(pools)
        affected = f"{len(names)} pool(s): " + ", ".join(names[:10])
        affected += ", ..." if len(names) > 10 else ""
    out = {
        "summary": f"{config.alertname}: alert pipeline degraded ({reasons})",
        "description": (
            f"The metrics pipeline is degraded ({reasons}). Absence and rate rules are held for "
            f"{affected}: no per-scope alert fires from delayed or missing data, and alerts "
            "already firing stay one alert while the backlog is processed."
        ),
    }
    if config.runbook_url:
        out["runbook_url"] = config.runbook_url
    if config.next_steps:
        out["next_steps"] = "\n".join(f"{i}. {s}" for i, s in enumerate(config.next_steps, 1))
    return out
