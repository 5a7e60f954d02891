"""The demo's alert lines: one line per alert state change, between the window tables.

:class:`ConsoleAlertSink` is a dispatcher sink (it accepts alert events, the state changes) that
writes one line per event to a text stream, for example::

    ALERT FIRING   ScopeHighErrorRate [page] mobile/ap-southeast: error_rate 25.31% > 15.00%,
        since 12:02:00Z | Error rate 25.3% in mobile/ap-southeast (above 15%)
    ALERT RESOLVED ScopeHighErrorRate [page] mobile/ap-southeast: error_rate 4.92% (threshold
        > 15.00%), lasted 1m40s

(each on one line; firing lines end with the summary annotation). The rule of an event (found
by its ``rule_id`` label through ``rule_of``, the rules in force) tells how to show its value:
rates in percent, latencies in ms, throughput in req/s, absence as seconds of silence, baselines
against the learnt level. An event whose rule is gone (removed by a reload, or the
pipeline-health alert) is shown with plain numbers. Only labels the engine sets are printed
(pool, region, a proxy's HMAC id): nothing here can reveal a proxy address.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TextIO

from schemas.alerts import AlertEvent, AlertStatus
from schemas.rules import AbsenceRule, BaselineRule, Metric, Rule, ThresholdRule
from stream_app.alerting.dispatcher import Accepts, Deliverable, only_events

RuleLookup = Callable[[str], Rule | None]
"""The rule with this id among the rules in force (None when there is none)."""

_PROXY_ID_CHARS = 12


def _no_rule(rule_id: str) -> Rule | None:
    return None


def describe_scope(labels: Mapping[str, str]) -> str:
    """``pool/region``, ``pool/region proxy <id>``, ``pool P``, ``region R`` or ``fleet``."""
    pool, region, proxy = labels.get("pool"), labels.get("region"), labels.get("proxy_id")
    if pool and region:
        scope = f"{pool}/{region}"
        return f"{scope} proxy {proxy[:_PROXY_ID_CHARS]}" if proxy else scope
    if pool:
        return f"pool {pool}"
    if region:
        return f"region {region}"
    return "fleet"


def format_metric(metric: Metric, value: float | None) -> str:
    """A metric value in its unit (``no data`` for None)."""
    if value is None:
        return "no data"
    if metric.is_rate:
        return f"{value:.2%}"
    if metric is Metric.THROUGHPUT_RPS:
        return f"{value:.1f} req/s"
    return f"{value:.1f} ms"


def _plain(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def describe_measure(event: AlertEvent, rule: Rule | None) -> str:
    """What the alert measured, compared with what the rule allows."""
    firing = event.status is AlertStatus.FIRING
    if isinstance(rule, AbsenceRule):
        if not firing:
            return "traffic is back"
        return f"silent for {_plain(event.value)} s (rule: {_plain(event.threshold)} s)"
    if isinstance(rule, ThresholdRule):
        value = format_metric(rule.metric, event.value)
        limit = f"{rule.op} {format_metric(rule.metric, rule.threshold)}"
        name = rule.metric.value if rule.outcome is None else f"{rule.outcome.value}_rate"
        return f"{name} {value} {limit}" if firing else f"{name} {value} (threshold {limit})"
    if isinstance(rule, BaselineRule):
        value = format_metric(rule.metric, event.value)
        base = format_metric(rule.metric, event.baseline)
        name = rule.metric.value if rule.outcome is None else f"{rule.outcome.value}_rate"
        return f"{name} {value} vs baseline {base}"
    text = f"value {_plain(event.value)}"
    if event.threshold is not None:
        text += f" (threshold {_plain(event.threshold)})"
    return text


def _clock_text(moment: datetime) -> str:
    return moment.strftime("%H:%M:%SZ")


def _duration_text(seconds: float) -> str:
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def format_alert_line(event: AlertEvent, rule: Rule | None) -> str:
    """The one line printed for an alert state change (no trailing newline)."""
    labels = event.labels
    status = "FIRING" if event.status is AlertStatus.FIRING else "RESOLVED"
    if event.status is AlertStatus.FIRING or event.ends_at is None:
        when = f"since {_clock_text(event.starts_at)}"
    else:
        when = f"lasted {_duration_text((event.ends_at - event.starts_at).total_seconds())}"
    line = (
        f"ALERT {status:<8} {labels.get('alertname', '?')} [{labels.get('severity', '?')}] "
        f"{describe_scope(labels)}: {describe_measure(event, rule)}, {when}"
    )
    summary = event.annotations.get("summary")
    if summary and event.status is AlertStatus.FIRING:
        # Resolved events carry the summary rendered with the clearing value: not worth a repeat.
        line += f" | {' '.join(summary.split())}"
    return line


class ConsoleAlertSink:
    """A dispatcher sink printing :func:`format_alert_line` for every alert state change."""

    def __init__(
        self, out: TextIO, *, rule_of: RuleLookup = _no_rule, name: str = "console"
    ) -> None:
        self._out = out
        self._rule_of = rule_of
        self._name = name
        self.lines_written = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def accepts(self) -> Accepts:
        return "events"

    async def start(self) -> None:
        return None

    async def deliver(self, item: Deliverable) -> None:
        event = only_events(item, self._name)
        rule = self._rule_of(event.labels.get("rule_id", ""))
        self._out.write(format_alert_line(event, rule) + "\n")
        self._out.flush()
        self.lines_written += 1

    async def close(self) -> None:
        return None
