"""Silences by matcher and time range; notification grouping intervals and webhook shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from alerting_core_kit import LAG_MS, Scenario, agg, end_of

from schemas.alerts import AlertEvent, AlertStatus
from schemas.rules import GroupingConfig
from stream_app.core.rules.grouping import Grouper


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def silenced_rules(starts_ms: int, ends_ms: int, matchers: list[object]) -> str:
    return json.dumps(
        {
            "grouping": {"group_wait_s": 0},
            "rules": [
                {
                    "id": "errors",
                    "name": "ProxyPoolHighErrorRate",
                    "kind": "threshold",
                    "metric": "error_rate",
                    "op": ">",
                    "threshold": 0.05,
                    "severity": "page",
                }
            ],
            "silences": [
                {
                    "id": "maint",
                    "matchers": matchers,
                    "starts_at": _iso(starts_ms),
                    "ends_at": _iso(ends_ms),
                }
            ],
        }
    )


def test_silence_mutes_only_matching_alerts_within_its_range() -> None:
    starts, ends = end_of(2), end_of(6)
    sc = Scenario.of(
        silenced_rules(starts, ends, ['pool="b"', {"name": "severity", "value": "page"}])
    )
    for i in range(4):
        sc.window(i, [agg("a", "eu", i), agg("b", "eu", i)])
    # both pools breach from window 4 (inside the silence): only "a" goes out
    for i in range(4, 6):
        sc.window(i, [agg("a", "eu", i, errors=50), agg("b", "eu", i, errors=50)])
    assert [(i, e.labels["pool"]) for i, e in sc.fired()] == [(4, "a")]
    assert sc.engine.stats.alerts_silenced == 1
    assert [a.labels["pool"] for a in sc.engine.active_alerts()] == ["a"]
    assert {a.labels["pool"] for a in sc.engine.active_alerts(include_silenced=True)} == {"a", "b"}
    assert all(a.labels.get("pool") != "b" for _, n in sc.notifications for a in n.alerts)

    # the silence ends while "b" still fires: its firing event goes out then, startsAt unchanged
    assert sc.engine.next_deadline_ms() is not None
    late = sc.tick(5, ends)
    (event,) = late.events
    assert event.labels["pool"] == "b"
    assert event.starts_at.timestamp() * 1000 == end_of(4) - 10_000


def test_alert_resolved_while_silenced_is_never_sent() -> None:
    sc = Scenario.of(silenced_rules(end_of(0), end_of(9), ['pool=~"b|c"']))
    sc.window(1, [agg("b", "eu", 1, errors=50)])
    sc.window(2, [agg("b", "eu", 2)])
    assert sc.events == []
    assert sc.engine.stats.alerts_fired == 1
    assert sc.engine.stats.alerts_resolved == 1
    sc.tick(2, end_of(9) + 1)
    assert sc.events == []


def test_silence_in_the_past_or_future_mutes_nothing() -> None:
    sc = Scenario.of(silenced_rules(end_of(50), end_of(60), ['pool="b"']))
    sc.window(1, [agg("b", "eu", 1, errors=50)])
    assert [e.labels["pool"] for _, e in sc.fired()] == ["b"]


def test_resolution_of_a_sent_alert_is_sent_even_under_a_new_silence() -> None:
    sc = Scenario.of(silenced_rules(end_of(3), end_of(9), ['pool="b"']))
    sc.window(1, [agg("b", "eu", 1, errors=50)])
    assert len(sc.fired()) == 1
    resends_before = len(sc.resends)
    sc.tick(3, end_of(8))  # a re-send is due, but muted now
    assert len(sc.resends) == resends_before
    sc.window(4, [agg("b", "eu", 4)])
    assert [e.labels["pool"] for _, e in sc.resolved()] == ["b"]


def _event(pool: str, status: AlertStatus, severity: str = "page") -> AlertEvent:
    labels = {"alertname": "X", "severity": severity, "rule_id": "r", "pool": pool}
    return AlertEvent(
        labels=labels,
        annotations={"summary": f"{pool} broken", "runbook_url": "https://r.example/x"},
        status=status,
        starts_at=datetime(2026, 11, 26, 21, 32, 7, tzinfo=UTC),
        ends_at=None
        if status is AlertStatus.FIRING
        else datetime(2026, 11, 26, 21, 40, tzinfo=UTC),
    )


def test_group_interval_and_repeat_interval() -> None:
    config = GroupingConfig(
        group_by=["alertname"], group_wait_s=10, group_interval_s=60, repeat_interval_s=600
    )
    grouper = Grouper(config)
    grouper.add(_event("a", AlertStatus.FIRING), 0)
    grouper.add(_event("b", AlertStatus.FIRING), 5_000)
    assert grouper.due(9_999) == []
    (first,) = grouper.due(10_000)
    assert [a.labels["pool"] for a in first.alerts] == ["a", "b"]
    grouper.add(_event("a", AlertStatus.FIRING), 20_000)  # a re-send is not news
    assert grouper.next_deadline_ms() == 610_000  # only the repeat is scheduled
    grouper.add(_event("c", AlertStatus.FIRING), 30_000)
    assert grouper.due(69_999) == []
    (second,) = grouper.due(70_000)
    assert sorted(a.labels["pool"] for a in second.alerts) == ["a", "b", "c"]
    grouper.add(_event("a", AlertStatus.RESOLVED), 80_000)
    (third,) = grouper.due(130_000)
    assert third.status is AlertStatus.FIRING
    assert [(a.labels["pool"], a.status) for a in third.alerts] == [
        ("a", AlertStatus.RESOLVED),
        ("b", AlertStatus.FIRING),
        ("c", AlertStatus.FIRING),
    ]
    assert grouper.due(729_999) == []
    (repeat,) = grouper.due(730_000)
    assert [a.labels["pool"] for a in repeat.alerts] == ["b", "c"]
    grouper.add(_event("b", AlertStatus.RESOLVED), 731_000)
    grouper.add(_event("c", AlertStatus.RESOLVED), 731_000)
    (last,) = grouper.due(790_000)
    assert last.status is AlertStatus.RESOLVED
    assert len(grouper) == 0


def test_flap_inside_group_wait_notifies_nothing() -> None:
    grouper = Grouper(GroupingConfig(group_wait_s=30))
    grouper.add(_event("a", AlertStatus.FIRING), 0)
    grouper.add(_event("a", AlertStatus.RESOLVED), 10_000)
    assert grouper.due(60_000) == []
    assert len(grouper) == 0


def test_group_by_splits_groups_and_dots_group_each_alert_alone() -> None:
    by_severity = Grouper(GroupingConfig(group_by=["alertname", "severity"], group_wait_s=0))
    for pool, severity in [("a", "page"), ("b", "page"), ("c", "info")]:
        by_severity.add(_event(pool, AlertStatus.FIRING, severity), 0)
    assert sorted(len(n.alerts) for n in by_severity.due(0)) == [1, 2]
    alone = Grouper(GroupingConfig(group_by=["..."], group_wait_s=0))
    for pool in "abc":
        alone.add(_event(pool, AlertStatus.FIRING), 0)
    assert len(alone.due(0)) == 3


def test_webhook_payload_has_alertmanager_shape() -> None:
    grouper = Grouper(GroupingConfig(group_by=["alertname", "pool"], group_wait_s=0))
    grouper.add(_event("poolA", AlertStatus.FIRING), 0)
    (note,) = grouper.due(0)
    body = note.to_webhook_payload("hook", "http://am.example:9093")
    # shape of a webhook body captured from Alertmanager 0.25 (fields and value formats)
    assert set(body) == {
        "receiver",
        "status",
        "alerts",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "version",
        "groupKey",
        "truncatedAlerts",
    }
    assert body["version"] == "4"
    assert body["groupKey"] == '{}:{alertname="X", pool="poolA"}'
    assert body["groupLabels"] == {"alertname": "X", "pool": "poolA"}
    alerts = body["alerts"]
    assert isinstance(alerts, list)
    (alert,) = alerts
    assert alert["status"] == "firing"
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["startsAt"] == "2026-11-26T21:32:07.000Z"
    assert alert["fingerprint"] == note.alerts[0].fingerprint
    assert set(alert) == {
        "status",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "fingerprint",
    }


def test_notification_common_labels_and_annotations() -> None:
    sc = Scenario.of(silenced_rules(0, 1, ['pool="none"']))
    sc.window(0, [agg("a", "eu", 0, errors=50), agg("b", "eu", 0, errors=50)])
    (note,) = sc.tick(0, end_of(0) + LAG_MS).notifications or [n for _, n in sc.notifications]
    assert note.common_labels == {
        "alertname": "ProxyPoolHighErrorRate",
        "region": "eu",
        "rule_id": "errors",
        "severity": "page",
    }
    assert "summary" not in note.common_annotations
