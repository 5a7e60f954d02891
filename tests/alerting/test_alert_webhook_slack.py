"""Slack-compatible webhook bodies, delivered over real HTTP to a loopback receiver."""

from __future__ import annotations

import pytest
from alert_test_events import event
from alert_webhook_receiver import WebhookReceiver

from schemas.aggregates import Scope, WindowAggregate
from schemas.alerts import AlertEvent, AlertStatus
from schemas.events import Outcome
from schemas.rules import parse_rules
from schemas.wire import WireEvent
from stream_app.alerting.dispatcher import AlertDispatcher
from stream_app.alerting.metrics import AlertingMetrics
from stream_app.alerting.placement import ScopeRuleRunner
from stream_app.alerting.slack_format import escape_mrkdwn, slack_body, slack_notification_body
from stream_app.alerting.webhook_sink import WebhookSink
from stream_app.core.accumulator import Accumulator
from stream_app.core.rules.engine import RuleEngine
from stream_app.core.rules.grouping import Notification
from stream_app.core.rules.options import EngineOptions


def check_slack_limits(body: dict[str, object]) -> None:
    """The constraints Slack enforces on incoming-webhook bodies with blocks."""
    assert isinstance(body["text"], str)
    assert body["text"]
    blocks = body["blocks"]
    assert isinstance(blocks, list)
    assert 1 <= len(blocks) <= 50
    for block in blocks:
        assert block["type"] in {"section", "context", "header", "divider"}
        if block["type"] == "section":
            assert block["text"]["type"] == "mrkdwn"
            assert len(block["text"]["text"]) <= 3000
            for field in block.get("fields", []):
                assert field["type"] == "mrkdwn"
                assert len(field["text"]) <= 2000
            assert len(block.get("fields", [])) <= 10
        if block["type"] == "context":
            assert 1 <= len(block["elements"]) <= 10


async def test_slack_body_delivered_over_http(
    receiver: WebhookReceiver, metrics: AlertingMetrics
) -> None:
    sink = WebhookSink(receiver.url, body_format="slack")
    dispatcher = AlertDispatcher([sink], metrics)
    await dispatcher.start()
    firing = event("poolA")
    dispatcher.publish(firing)
    dispatcher.publish(event("poolA", status=AlertStatus.RESOLVED))
    await receiver.wait_for(lambda r: len(r.bodies) == 2, timeout_s=10)
    await dispatcher.close()
    fired, resolved = receiver.bodies
    assert set(fired) == {"text", "blocks"}
    check_slack_limits(fired)
    check_slack_limits(resolved)
    assert "[FIRING] ProxyPoolHighErrorRate" in fired["text"]
    assert "pool=poolA, region=eu" in fired["text"]
    assert "[RESOLVED]" in resolved["text"]
    first_section = fired["blocks"][0]["text"]["text"]
    assert escape_mrkdwn("error rate 12% > 5%") in first_section
    assert "error rate 12% > 5%" not in first_section  # raw '>' would be mrkdwn markup
    texts = [b["text"]["text"] for b in fired["blocks"] if b["type"] == "section"]
    assert any(t.startswith("*Next steps*") for t in texts)
    resolved_texts = [b["text"]["text"] for b in resolved["blocks"] if b["type"] == "section"]
    assert not any(t.startswith("*Next steps*") for t in resolved_texts)
    context = fired["blocks"][-1]["elements"][0]["text"]
    assert firing.fingerprint in context


def test_slack_body_truncates_huge_annotations() -> None:
    ev = AlertEvent(
        labels={"alertname": "X", "severity": "info"},
        annotations={"summary": "s" * 5000, "next_steps": "<&>" * 2000, "runbook_url": "http://rb"},
        status=AlertStatus.FIRING,
        starts_at=event().starts_at,
    )
    body = slack_body(ev)
    check_slack_limits(body)
    assert "fleet" in body["text"]  # no pool/region labels: a fleet-wide alert
    assert "<http://rb|runbook>" in body["blocks"][-1]["elements"][0]["text"]


def test_escape_mrkdwn() -> None:
    assert escape_mrkdwn("a<b>&c") == "a&lt;b&gt;&amp;c"


GROUPED_RULES = """
grouping: {group_by: [alertname], group_wait_s: 0, group_interval_s: 1}
rules:
  - id: pool-errors
    name: ProxyPoolHighErrorRate
    kind: threshold
    metric: error_rate
    op: ">"
    threshold: 0.05
    next_steps: ["Check the upstream of {pool}"]
"""


def breaching_windows(pools: list[str], start_ms: int) -> list[WindowAggregate]:
    out = []
    for pool in pools:
        acc = Accumulator()
        for i in range(40):
            acc.add(
                WireEvent(
                    event_id=f"{pool}-{i}",
                    ts_ms=start_ms + i,
                    pool=pool,
                    region="eu",
                    outcome=Outcome.TIMEOUT if i % 4 == 0 else Outcome.SUCCESS,
                    latency_ms=12.0,
                    source_host="h",
                )
            )
        out.append(acc.to_aggregate(Scope(pool=pool, region="eu"), start_ms, 10))
    return out


@pytest.mark.parametrize("body_format", ["json", "slack"])
async def test_simultaneous_breaches_are_one_grouped_notification(
    receiver: WebhookReceiver, metrics: AlertingMetrics, body_format: str
) -> None:
    """Many pools breaching in one window reach the webhook as ONE notification."""
    hook = WebhookSink(
        receiver.url,
        name="chat",
        body_format=body_format,  # type: ignore[arg-type]
        accepts="notifications",
        external_url="http://pwm.local",
    )
    per_event = WebhookSink(receiver.url + "/events", name="events")
    dispatcher = AlertDispatcher([hook, per_event], metrics)
    await dispatcher.start()
    engine = RuleEngine(parse_rules(GROUPED_RULES, "r.yaml"), EngineOptions(window_s=10))
    now = {"ms": 1_800_000_012_000}
    runner = ScopeRuleRunner(engine, dispatcher, lambda: now["ms"])
    pools = [f"pool{i}" for i in range(5)]
    fired = runner.on_windows_closed(
        breaching_windows(pools, 1_800_000_000_000), window_end_ms=1_800_000_010_000
    )
    assert fired == 5
    await receiver.wait_for(lambda r: len(r.bodies) == 6, timeout_s=10)
    assert await dispatcher.drain(timeout_s=5)
    await dispatcher.close()
    grouped = [b for b in receiver.bodies if "fingerprint" not in b]
    singles = [b for b in receiver.bodies if "fingerprint" in b]  # AlertEvent JSON
    assert len(singles) == 5  # the per-event webhook got each state change
    (note,) = grouped
    if body_format == "json":
        assert note["version"] == "4"
        assert note["status"] == "firing"
        assert note["groupLabels"] == {"alertname": "ProxyPoolHighErrorRate"}
        assert sorted(a["labels"]["pool"] for a in note["alerts"]) == pools
        assert note["externalURL"] == "http://pwm.local"
        assert all(a["endsAt"] == "0001-01-01T00:00:00Z" for a in note["alerts"])
    else:
        check_slack_limits(note)
        assert "[FIRING:5] ProxyPoolHighErrorRate" in note["text"]
        listing = note["blocks"][1]["text"]["text"]
        assert all(f"pool={p}" in listing for p in pools)


def test_slack_notification_lists_at_most_20_alerts() -> None:
    alerts = tuple(event(f"p{i}") for i in range(30))
    note = Notification(
        group_key='{}:{alertname="X"}',
        group_labels={"alertname": "X"},
        status=AlertStatus.FIRING,
        alerts=alerts,
        common_labels={"alertname": "X"},
        common_annotations={},
    )
    body = slack_notification_body(note)
    check_slack_limits(body)
    listing = body["blocks"][1]["text"]["text"]
    assert listing.count("\n- ") == 19
    assert listing.endswith("... and 10 more")
