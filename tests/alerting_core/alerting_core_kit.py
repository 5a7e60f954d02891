"""Builders for the rule engine tests: synthetic window aggregates and a scenario driver."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from schemas.aggregates import LatencyHistogram, Scope, WindowAggregate
from schemas.alerts import AlertEvent, AlertStatus
from schemas.events import Outcome
from schemas.latency_buckets import bucket_key
from schemas.rules import RuleSet, parse_rules
from stream_app.core.rules import EngineOptions, EngineOutput, Notification, RuleEngine

WINDOW_S = 10
WINDOW_MS = WINDOW_S * 1000
T0_MS = 1_800_000_000_000  # a window boundary (multiple of 10 s and of 1 h)
LAG_MS = 2_000  # wall clock runs this far behind a window's end when it is evaluated


def end_of(i: int) -> int:
    """Event-time end of window ``i``."""
    return T0_MS + (i + 1) * WINDOW_MS


def agg(
    pool: str,
    region: str,
    i: int,
    *,
    requests: int = 100,
    errors: int = 0,
    error_outcome: Outcome = Outcome.HTTP_ERROR,
    latency_ms: float = 100.0,
    status_5xx: int = 0,
    proxy_id: str | None = None,
    window_s: int = WINDOW_S,
) -> WindowAggregate:
    """One window of one scope: ``errors`` of ``requests`` failed, every latency ``latency_ms``."""
    end = T0_MS + (i + 1) * window_s * 1000
    outcomes = {Outcome.SUCCESS: requests - errors}
    if errors:
        outcomes[error_outcome] = errors
    classes = {"2xx": requests - status_5xx}
    if status_5xx:
        classes["5xx"] = status_5xx
    return WindowAggregate(
        scope=Scope(pool=pool, region=region, proxy_id=proxy_id),
        window_start_ms=end - window_s * 1000,
        window_end_ms=end,
        window_s=window_s,
        requests=requests,
        successes=requests - errors,
        outcomes={k: v for k, v in outcomes.items() if v},
        status_classes={k: v for k, v in classes.items() if v},
        latency=LatencyHistogram(
            buckets={bucket_key(latency_ms): requests} if requests else {},
            count=requests,
            sum_ms=latency_ms * requests,
            min_ms=latency_ms if requests else None,
            max_ms=latency_ms if requests else None,
        ),
    )


def rules(text: str) -> RuleSet:
    return parse_rules(text, "test-rules.yaml")


def threshold_rule(**fields: object) -> str:
    """A rules file with one threshold rule (error rate > 5 % per pool x region by default)."""
    rule: dict[str, object] = {
        "id": "pool-errors",
        "name": "ProxyPoolHighErrorRate",
        "kind": "threshold",
        "metric": "error_rate",
        "op": ">",
        "threshold": 0.05,
        "severity": "page",
        "min_requests": 20,
    }
    rule.update(fields)
    return json.dumps({"grouping": {"group_wait_s": 30}, "rules": [rule]})


@dataclass
class Scenario:
    """Drives an engine window by window and keeps everything it emitted, by window index."""

    engine: RuleEngine
    events: list[tuple[int, AlertEvent]] = field(default_factory=list)
    resends: list[tuple[int, AlertEvent]] = field(default_factory=list)
    notifications: list[tuple[int, Notification]] = field(default_factory=list)

    @classmethod
    def of(cls, rule_set: RuleSet | str, **options: object) -> Scenario:
        if isinstance(rule_set, str):
            rule_set = rules(rule_set)
        return cls(RuleEngine(rule_set, EngineOptions.model_validate(options)))

    def keep(self, i: int, out: EngineOutput) -> EngineOutput:
        self.events.extend((i, e) for e in out.events)
        self.resends.extend((i, e) for e in out.resends)
        self.notifications.extend((i, n) for n in out.notifications)
        return out

    def window(
        self, i: int, aggregates: Iterable[WindowAggregate], *, now_ms: int | None = None
    ) -> EngineOutput:
        now = end_of(i) + LAG_MS if now_ms is None else now_ms
        out = self.engine.evaluate_window(list(aggregates), window_end_ms=end_of(i), now_ms=now)
        return self.keep(i, out)

    def tick(self, i: int, now_ms: int) -> EngineOutput:
        return self.keep(i, self.engine.tick(now_ms))

    def fired(self) -> list[tuple[int, AlertEvent]]:
        return [(i, e) for i, e in self.events if e.status is AlertStatus.FIRING]

    def resolved(self) -> list[tuple[int, AlertEvent]]:
        return [(i, e) for i, e in self.events if e.status is AlertStatus.RESOLVED]
