"""The demo's alert lines: one per state change, the value in the rule's unit."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from schemas.alerts import AlertEvent, AlertStatus
from schemas.rules import parse_rules
from stream_app.embedded.alert_console import ConsoleAlertSink, format_alert_line

RULES = parse_rules(
    """
rules:
  - {id: errors, name: HighErrors, kind: threshold, metric: error_rate, op: ">", threshold: 0.15}
  - {id: slow, name: Slow, kind: threshold, metric: latency_p95_ms, op: ">", threshold: 400,
     level: region}
  - {id: timeouts, name: Timeouts, kind: threshold, metric: outcome_rate, outcome: timeout,
     op: ">=", threshold: 0.5, level: proxy}
  - {id: surge, name: Surge, kind: baseline, metric: throughput_rps, level: pool,
     baseline: {min_abs_change: 100}}
  - {id: silent, name: Silent, kind: absence, absence: {windows: 3}}
""",
    "rules.yaml",
)
START = datetime(2026, 11, 26, 21, 32, 0, tzinfo=UTC)


def _event(
    rule_id: str, scope: dict[str, str], status: AlertStatus, **fields: object
) -> AlertEvent:
    rule = RULES.rule(rule_id)
    assert rule is not None
    labels = {"alertname": rule.name, "severity": rule.severity.value, "rule_id": rule_id, **scope}
    ends = START + timedelta(seconds=100) if status is AlertStatus.RESOLVED else None
    return AlertEvent(labels=labels, status=status, starts_at=START, ends_at=ends, **fields)  # type: ignore[arg-type]


def _line(event: AlertEvent) -> str:
    return format_alert_line(event, RULES.rule(event.labels["rule_id"]))


def test_threshold_alerts_show_value_against_threshold_in_the_metric_unit() -> None:
    scope = {"pool": "mobile", "region": "ap-southeast"}
    fired = _event(
        "errors",
        scope,
        AlertStatus.FIRING,
        value=0.2531,
        threshold=0.15,
        annotations={"summary": "Error rate 25.3%\nin mobile"},
    )
    assert _line(fired) == (
        "ALERT FIRING   HighErrors [warning] mobile/ap-southeast: error_rate 25.31% > 15.00%, "
        "since 21:32:00Z | Error rate 25.3% in mobile"
    )
    resolved = _event(
        "errors",
        scope,
        AlertStatus.RESOLVED,
        value=0.049,
        threshold=0.15,
        annotations={"summary": "Error rate 4.9% in mobile"},
    )
    assert _line(resolved) == (
        "ALERT RESOLVED HighErrors [warning] mobile/ap-southeast: error_rate 4.90% "
        "(threshold > 15.00%), lasted 1m40s"
    )
    gone = _event("errors", scope, AlertStatus.RESOLVED, value=None, threshold=0.15)
    assert "error_rate no data (threshold > 15.00%)" in _line(gone)
    slow = _event("slow", {"region": "eu-west"}, AlertStatus.FIRING, value=1002.4, threshold=400)
    assert "Slow [warning] region eu-west: latency_p95_ms 1002.4 ms > 400.0 ms," in _line(slow)


def test_proxy_baseline_absence_and_ruleless_alerts() -> None:
    proxy = {"pool": "residential", "region": "us-east", "proxy_id": "8d4ff5f1c0ffee00aa11bb22"}
    timeouts = _event("timeouts", proxy, AlertStatus.FIRING, value=0.75, threshold=0.5)
    assert "residential/us-east proxy 8d4ff5f1c0ff: timeout_rate 75.00% >= 50.00%," in _line(
        timeouts
    )
    surge = _event(
        "surge", {"pool": "residential"}, AlertStatus.FIRING, value=3712.0, baseline=1498.5
    )
    assert "pool residential: throughput_rps 3712.0 req/s vs baseline 1498.5 req/s," in _line(surge)
    silent = _event(
        "silent",
        {"pool": "isp", "region": "us-east"},
        AlertStatus.FIRING,
        value=30.0,
        threshold=30.0,
    )
    assert "isp/us-east: silent for 30 s (rule: 30 s)," in _line(silent)
    back = _event("silent", {"pool": "isp", "region": "us-east"}, AlertStatus.RESOLVED, value=0.0)
    assert (
        _line(back) == "ALERT RESOLVED Silent [warning] isp/us-east: traffic is back, lasted 1m40s"
    )
    pipeline = AlertEvent(
        labels={"alertname": "PipelineDegraded", "severity": "page", "rule_id": "pipeline-health"},
        status=AlertStatus.FIRING,
        starts_at=START,
        value=65000.0,
    )
    assert format_alert_line(pipeline, None) == (
        "ALERT FIRING   PipelineDegraded [page] fleet: value 6.5e+04, since 21:32:00Z"
    )


async def test_the_console_sink_writes_one_line_per_event() -> None:
    out = io.StringIO()
    sink = ConsoleAlertSink(out, rule_of=RULES.rule)
    scope = {"pool": "a", "region": "eu"}
    await sink.deliver(_event("errors", scope, AlertStatus.FIRING, value=0.3, threshold=0.15))
    await sink.deliver(_event("errors", scope, AlertStatus.RESOLVED, value=0.1, threshold=0.15))
    assert out.getvalue().splitlines() == [
        "ALERT FIRING   HighErrors [warning] a/eu: error_rate 30.00% > 15.00%, since 21:32:00Z",
        "ALERT RESOLVED HighErrors [warning] a/eu: error_rate 10.00% (threshold > 15.00%), "
        "lasted 1m40s",
    ]
    assert sink.lines_written == 2
