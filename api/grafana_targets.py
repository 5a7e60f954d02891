"""Grafana JSON datasource targets, answered by the one query layer.

Every target is a name (the ``target`` of a query) and a payload; :func:`plan` validates both
(pure, before any read) and the returned :class:`TargetPlan` reads through
:mod:`stream_app.storage.query_views` and :class:`~stream_app.storage.queries.StorageQueries`
(the functions REST v1 answers with), so a Grafana panel shows the numbers ``/api/v1`` gives:

- time series (``{"target", "datapoints": [[value, epoch ms], ...]}``, ``null`` where a step has
  no data): every :class:`~stream_app.storage.query_metrics.SeriesMetric` (``success_rate``,
  ``latency_p95_ms``...) per scope (:mod:`api.grafana_scopes`) or per proxy (payload
  ``proxy``), ``outcome_rate`` (payload ``outcome``) and ``errors_by_outcome`` (one series per
  failure outcome seen in the range). Tier and step are :func:`~.query_tiers.choose_tier`'s,
  with Grafana's ``maxDataPoints`` (at most 1,500) and ``intervalMs`` as REST's ``step_s``;
- tables (``{"type": "table", "columns", "rows"}``, :mod:`api.grafana_tables`): ``pool_table``
  (the latest closed window per pool x region, as ``/api/v1/summary``), ``top_proxies``
  (``/api/v1/proxies``) and ``active_alerts`` (``/api/v1/alerts``);
- annotations: ``alert_annotations``, and any query Grafana runs for an annotation (``refId``
  ``Anno``): one row per alert incident overlapping the range (``time``, ``timeEnd``,
  ``title``, ``text``, ``tags``), from ``/api/v1/alerts/history``'s rows.

Synchronous once planned (storage calls block): run :meth:`TargetPlan.run` in a thread.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from api import grafana_tables as tables
from api.grafana_model import AdHocFilter, QueryTarget, payload_values
from api.grafana_reads import Json, QuerySpan, Reader, series
from api.grafana_scopes import GrafanaRequestError, Selection, select
from schemas.alerts import Severity
from schemas.events import Outcome
from schemas.rule_kinds import RULE_ID_PATTERN
from stream_app.storage.query_metrics import SeriesMetric, metric_value
from stream_app.storage.query_tiers import choose_tier
from stream_app.storage.query_views import render_series

__all__ = [
    "ANNOTATION_REF_ID",
    "TARGETS",
    "QuerySpan",
    "Reader",
    "TargetPlan",
    "TargetSpec",
    "plan",
]

ANNOTATION_REF_ID = "Anno"
"""The ``refId`` Grafana gives the query of an annotation."""


_SCOPE = frozenset({"pool", "region", "group_by"})
_ALERT = frozenset({"pool", "region", "severity", "rule_id"})
_FAILURES = tuple(o for o in Outcome if o is not Outcome.SUCCESS)


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """A target Grafana may ask for: its kind, what it shows, the payload keys it takes."""

    name: str
    kind: str  # "timeseries" | "table" | "annotations"
    label: str
    payload: frozenset[str]


def _series_specs() -> list[TargetSpec]:
    specs = [
        TargetSpec(m.value, "timeseries", m.value.replace("_", " "), _SCOPE | {"proxy"})
        for m in SeriesMetric
        if m is not SeriesMetric.OUTCOME_RATE
    ]
    specs.append(
        TargetSpec(
            "outcome_rate", "timeseries", "share of one outcome", _SCOPE | {"proxy", "outcome"}
        )
    )
    specs.append(
        TargetSpec("errors_by_outcome", "timeseries", "error rate by failure outcome", _SCOPE)
    )
    return specs


TARGETS: dict[str, TargetSpec] = {
    s.name: s
    for s in [
        *_series_specs(),
        TargetSpec(
            "pool_table", "table", "latest closed window per pool x region", _SCOPE - {"group_by"}
        ),
        TargetSpec(
            "top_proxies",
            "table",
            "worst proxies of a pool",
            frozenset({"pool", "region", "by", "limit", "min_requests"}),
        ),
        TargetSpec("active_alerts", "table", "alerts firing now", _ALERT),
        TargetSpec("alert_annotations", "annotations", "alert incidents", _ALERT),
    ]
}
"""Every target, by name (``/metrics`` lists them)."""


def _one(payload: Mapping[str, Any], key: str) -> str | None:
    try:
        values = payload_values(payload.get(key))
    except ValueError as exc:
        raise GrafanaRequestError(f"payload {key}: {exc}") from exc
    if values is None:
        return None
    if len(values) != 1:
        raise GrafanaRequestError(f"payload {key}: one value expected")
    return values[0]


def _int(payload: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    raw = payload.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(str(raw))
    except ValueError as exc:
        raise GrafanaRequestError(f"payload {key}: not a whole number") from exc
    if not low <= value <= high:
        raise GrafanaRequestError(f"payload {key}: must be within {low}..{high}")
    return value


def _choice(text: str | None, options: Iterable[str], key: str) -> str | None:
    allowed = list(options)
    if text is not None and text not in allowed:
        raise GrafanaRequestError(f"payload {key}: {text[:64]!r} is not one of {allowed}")
    return text


@dataclass(frozen=True, slots=True)
class TargetPlan:
    """A validated target: what to read and how to answer."""

    spec: TargetSpec
    ref_id: str | None
    selection: Selection
    options: Mapping[str, Any] = field(default_factory=dict)

    def run(self, reader: Reader, span: QuerySpan) -> list[Json]:
        """Read and shape the answer (blocking: call it in a thread)."""
        answer: Callable[[TargetPlan, Reader, QuerySpan], list[Json]] = _ANSWERS.get(
            self.spec.name, _metric_series
        )
        return answer(self, reader, span)

    def known(self, reader: Reader, span: QuerySpan) -> Callable[[], list[tuple[str, str]]]:
        """The stored (pool, region) pairs with data in the span, read when called."""
        return lambda: reader.queries.pools_regions(span.start_ms)


def plan(target: QueryTarget, filters: Iterable[AdHocFilter]) -> TargetPlan:
    """Validate ``target`` (its name, payload and the request's ad-hoc ``filters``)."""
    annotation = target.ref_id == ANNOTATION_REF_ID
    name = "alert_annotations" if annotation else (target.target or "")
    spec = TARGETS.get(name)
    if spec is None:
        raise GrafanaRequestError(
            f"target {name[:128]!r} is unknown; POST /grafana/metrics lists the targets"
        )
    payload = target.payload
    unknown = sorted(set(payload) - spec.payload)
    if unknown and not annotation:
        raise GrafanaRequestError(
            f"payload key {unknown[0][:64]!r} is not one of {sorted(spec.payload)} ({name})"
        )
    selection = select(payload, filters, proxies="proxy" in spec.payload)
    options: dict[str, Any] = {}
    if name == "outcome_rate":
        outcome = _one(payload, "outcome")
        if outcome is None:
            raise GrafanaRequestError("payload outcome: required by outcome_rate")
        _choice(outcome, [o.value for o in Outcome], "outcome")
        options["outcome"] = Outcome(outcome)
    elif name == "top_proxies":
        selection.single("region")
        if selection.single("pool") is None:
            raise GrafanaRequestError("payload pool: top_proxies needs one pool")
        options["by"] = (
            _choice(_one(payload, "by"), ("error_rate", "latency_p95_ms"), "by") or "error_rate"
        )
        options["limit"] = _int(payload, "limit", 10, 1, 50)
        options["min_requests"] = _int(payload, "min_requests", 10, 1, 1_000_000_000)
    elif spec.payload == _ALERT:
        options["severity"] = _choice(
            _one(payload, "severity"), [s.value for s in Severity], "severity"
        )
        rule_id = _one(payload, "rule_id")
        if rule_id is not None and re.fullmatch(RULE_ID_PATTERN, rule_id) is None:
            raise GrafanaRequestError("payload rule_id: not a rule id")
        options["rule_id"] = rule_id
    return TargetPlan(spec, target.ref_id, selection, options)


def _metric_series(p: TargetPlan, reader: Reader, span: QuerySpan) -> list[Json]:
    metric = SeriesMetric("outcome_rate" if p.spec.name == "outcome_rate" else p.spec.name)
    outcome: Outcome | None = p.options.get("outcome")
    if p.selection.proxies:
        return _proxy_series(p, reader, span, metric, outcome)
    out = []
    for scope in p.selection.scopes(p.known(reader, span)):
        view = render_series(
            reader.scope_series(span, scope.pool, scope.region),
            metric,
            now_ms=span.now_ms,
            staleness_s=reader.staleness_s,
            pool=scope.pool,
            region=scope.region,
            outcome=outcome,
        )
        name = p.spec.name if outcome is None else f"{outcome.value}_rate"
        out.append(series(name + scope.labels(), view.points, p.ref_id))
    return out


def _proxy_series(
    p: TargetPlan, reader: Reader, span: QuerySpan, metric: SeriesMetric, outcome: Outcome | None
) -> list[Json]:
    """One series per proxy from ``proxy_1m`` (steps of at least 1 min, as ``/proxies``)."""
    proxies = p.selection.proxies or []
    choice = choose_tier(
        span.start_ms,
        span.end_ms,
        now_ms=span.now_ms,
        retention=reader.retention,
        max_points=span.max_points,
        min_step_s=max(60, span.min_step_s),
        window_s=reader.window_s,
    )
    pool, region = p.selection.single("pool"), p.selection.single("region")
    by_proxy = reader.queries.proxy_series(choice, proxies, pool=pool, region=region)
    return [
        series(
            f"{p.spec.name}{{proxy={proxy}}}",
            [
                (ms, metric_value(steps.get(ms), metric, span_s=choice.step_s, outcome=outcome))
                for ms in choice.steps_ms()
            ],
            p.ref_id,
        )
        for proxy, steps in by_proxy.items()
    ]


def _errors_by_outcome(p: TargetPlan, reader: Reader, span: QuerySpan) -> list[Json]:
    """Per scope, the share of each failure outcome per step (REST's ``outcome_rate``, read
    once for all outcomes); outcomes that never happened in the range are left out."""
    out = []
    for scope in p.selection.scopes(p.known(reader, span)):
        data = reader.scope_series(span, scope.pool, scope.region)
        choice, by_step = data.choice, data.by_step
        for outcome in _FAILURES:
            if not any(t.outcomes.get(outcome.value, 0) for t in by_step.values()):
                continue
            points = [
                (
                    ms,
                    metric_value(
                        by_step.get(ms),
                        SeriesMetric.OUTCOME_RATE,
                        span_s=choice.step_s,
                        outcome=outcome,
                    ),
                )
                for ms in choice.steps_ms()
            ]
            out.append(series(f"{outcome.value}_rate{scope.labels()}", points, p.ref_id))
    return out


_ANSWERS: dict[str, Callable[[TargetPlan, Reader, QuerySpan], list[Json]]] = {
    "errors_by_outcome": _errors_by_outcome,
    "pool_table": tables.pool_table,
    "top_proxies": tables.top_proxies,
    "active_alerts": tables.active_alerts,
    "alert_annotations": tables.annotation_table,
}
