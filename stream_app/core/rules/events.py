"""Alert events from alert states: Alertmanager-shaped labels, rendered annotations, times.

Labels: ``alertname`` (the rule's name), ``severity``, ``rule_id``, the rule's own labels, and the
scope (``pool``, ``region``, ``proxy_id`` as the level has them). The same (rule, scope) always
has the same labels, hence the same Alertmanager fingerprint.

Annotations: the rule's templates (``summary``, ``description``, any other key), ``runbook_url``
and ``next_steps`` (numbered lines), rendered with the latest evaluation's values; a rule without
``summary`` or ``description`` gets a default one. ``startsAt`` is when the condition began
(event time), ``endsAt`` of a resolved event when it was resolved.
"""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.alerts import AlertEvent, AlertStatus
from schemas.rule_templates import Template, compile_template
from schemas.rules import AbsenceRule, BaselineRule, Metric, Rule, ThresholdRule
from stream_app.core.rules.lifecycle import AlertState
from stream_app.core.rules.scopes import ScopeRef


def alert_labels(rule: Rule, scope: ScopeRef) -> dict[str, str]:
    """The label set of ``rule``'s alert for ``scope``."""
    labels = {"alertname": rule.name, "severity": rule.severity.value, "rule_id": rule.id}
    labels.update(rule.labels)
    labels.update(scope.labels())
    return labels


def _value_spec(rule: Rule) -> tuple[str, str]:
    if isinstance(rule, AbsenceRule):
        return ".0f", " s"
    if rule.metric.is_rate:
        return ".2%", ""
    if rule.metric is Metric.THROUGHPUT_RPS:
        return ".2f", " req/s"
    return ".1f", " ms"


def default_templates(rule: Rule) -> dict[str, Template]:
    """Summary and description used when the rule has none."""
    spec, unit = _value_spec(rule)
    value = f"{{value:{spec}}}{unit}"
    if isinstance(rule, AbsenceRule):
        summary = "{alertname}: no traffic from {scope} for " + value
        description = (
            "{scope} had traffic and has been silent for " + value + " (rule {rule_id}: "
            "silent for {threshold:.0f} s)."
        )
    elif isinstance(rule, BaselineRule):
        base = f"{{baseline:{spec}}}{unit}"
        summary = "{alertname}: {metric} " + value + " on {scope} vs baseline " + base
        description = (
            "{metric} on {scope} is " + value + ", {sigma:.1f} sigma from its baseline " + base
            + " over {requests} requests in the {window_s} s window (rule {rule_id})."
        )  # fmt: skip
    else:
        limit = f"{{threshold:{spec}}}{unit}"
        summary = "{alertname}: {metric} " + value + " on {scope} ({op} " + limit + ")"
        description = (
            "{metric} on {scope} is " + value + " ({op} " + limit + ") over {requests} "
            "requests in the {window_s} s window (rule {rule_id})."
        )
    return {"summary": compile_template(summary), "description": compile_template(description)}


def _outcome(rule: Rule) -> str | None:
    if isinstance(rule, AbsenceRule) or rule.outcome is None:
        return None
    return rule.outcome.value


def template_values(rule: Rule, state: AlertState, window_s: int) -> dict[str, object]:
    scope = state.scope
    return {
        "alertname": rule.name,
        "rule_id": rule.id,
        "severity": rule.severity.value,
        "level": scope.level,
        "scope": scope.describe(),
        "pool": scope.pool,
        "region": scope.region,
        "proxy_id": scope.proxy_id,
        "metric": None if isinstance(rule, AbsenceRule) else rule.metric.value,
        "outcome": _outcome(rule),
        "op": rule.op if isinstance(rule, ThresholdRule) else None,
        "value": state.value,
        "threshold": state.threshold,
        "baseline": state.baseline,
        "sigma": state.sigma,
        "window_s": window_s,
        "requests": state.requests,
        "for_s": rule.for_ms(window_s) / 1000,
    }


def render_annotations(
    rule: Rule, state: AlertState, window_s: int, defaults: dict[str, Template]
) -> dict[str, str]:
    """The annotations of ``rule``'s alert in ``state``."""
    values = template_values(rule, state, window_s)
    templates = {**defaults, **rule.templates}
    return {name: template.render(values) for name, template in templates.items()}


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def make_event(
    state: AlertState, status: AlertStatus, *, ends_at_ms: int | None, generator_url: str
) -> AlertEvent:
    """The :class:`AlertEvent` of ``state`` (labels and annotations as stored in it)."""
    return AlertEvent(
        labels=dict(state.labels),
        annotations=dict(state.annotations),
        status=status,
        starts_at=ms_to_datetime(state.active_at_ms),
        ends_at=None if ends_at_ms is None else ms_to_datetime(ends_at_ms),
        value=state.value,
        threshold=state.threshold,
        baseline=state.baseline,
        window_start_ms=state.window_start_ms,
        window_end_ms=state.window_end_ms,
        generator_url=generator_url,
    )
