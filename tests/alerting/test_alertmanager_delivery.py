"""Delivery to a real Alertmanager 0.25 process (Debian's prometheus-alertmanager).

The alert shows up in ``GET /api/v2/alerts`` with our labels and fingerprint, Alertmanager's
webhook (version "4") notifies our loopback receiver, and re-posting with ``endsAt`` in the past
resolves it. The payload shape is compared with a capture from a real Alertmanager 0.25
(fixtures/am025_webhook_payloads.jsonl).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alert_test_events import event
from alert_webhook_receiver import WebhookReceiver
from alerting_waits import wait_until
from prometheus_client import CollectorRegistry

from schemas.alerts import AlertStatus, fingerprint
from stream_app.alerting.alertmanager_sink import AlertmanagerSink
from stream_app.alerting.backoff import RetryPolicy
from stream_app.alerting.dispatcher import AlertDispatcher
from stream_app.alerting.metrics import AlertingMetrics
from tests.support.alertmanager import Alertmanager, AlertmanagerFactory

pytestmark = [pytest.mark.alertmanager, pytest.mark.slow]

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def alertmanager(
    receiver: WebhookReceiver, alertmanager_factory: AlertmanagerFactory
) -> Alertmanager:
    # Grouped like the captured contract payloads (group_by alertname, pool).
    return alertmanager_factory(receiver.url, group_by=("alertname", "pool"))


def captured() -> list[dict[str, Any]]:
    lines = (FIXTURES / "am025_webhook_payloads.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


async def am_alerts(am: Alertmanager) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"{am.url}/api/v2/alerts")
    response.raise_for_status()
    alerts: list[dict[str, Any]] = response.json()
    return alerts


def test_fingerprint_matches_alertmanager_capture() -> None:
    firing, _ = captured()
    alert = firing["alerts"][0]
    assert fingerprint(alert["labels"]) == alert["fingerprint"] == "bb56319a8aab4ed3"


async def test_alert_fires_in_alertmanager_and_resolves(
    alertmanager: Alertmanager,
    receiver: WebhookReceiver,
    metrics: AlertingMetrics,
    registry: CollectorRegistry,
) -> None:
    sink = AlertmanagerSink(alertmanager.url, metrics, resend_interval_s=0.3)
    dispatcher = AlertDispatcher(
        [sink], metrics, retry=RetryPolicy(max_attempts=5, initial_backoff_s=0.05)
    )
    await dispatcher.start()
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2)
    firing = event("poolA", starts_at=started)
    dispatcher.publish(firing)

    await receiver.wait_for(lambda r: len(r.bodies) >= 1, timeout_s=20)
    note = receiver.bodies[0]
    capture_firing, capture_resolved = captured()
    assert set(note) == set(capture_firing)
    assert note["version"] == "4"
    assert note["status"] == "firing"
    (alert,) = note["alerts"]
    assert set(alert) == set(capture_firing["alerts"][0])
    assert alert["labels"] == firing.labels
    assert alert["annotations"] == firing.annotations
    assert alert["fingerprint"] == firing.fingerprint
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["generatorURL"] == firing.generator_url
    assert datetime.fromisoformat(alert["startsAt"]) == started

    listed = [a for a in await am_alerts(alertmanager) if a["fingerprint"] == firing.fingerprint]
    assert len(listed) == 1
    assert listed[0]["labels"] == firing.labels
    assert listed[0]["status"]["state"] == "active"

    # While firing, the sink re-sends it periodically (Alertmanager would otherwise expire it).
    await _wait_metric(registry, "pwm_alertmanager_resent_total", at_least=2.0, timeout_s=10)
    assert sink.firing.keys() == {firing.fingerprint}

    ended = datetime.now(UTC) - timedelta(seconds=1)
    resolved = event("poolA", status=AlertStatus.RESOLVED, starts_at=started, ends_at=ended)
    dispatcher.publish(resolved)
    await receiver.wait_for(
        lambda r: any(b["status"] == "resolved" for b in r.bodies), timeout_s=20
    )
    note = next(b for b in receiver.bodies if b["status"] == "resolved")
    assert set(note) == set(capture_resolved)
    (alert,) = note["alerts"]
    assert alert["status"] == "resolved"
    assert alert["fingerprint"] == firing.fingerprint
    assert datetime.fromisoformat(alert["endsAt"]) < datetime.now(UTC)
    assert sink.firing == {}
    still_active = [
        a
        for a in await am_alerts(alertmanager)
        if a["fingerprint"] == firing.fingerprint and a["status"]["state"] == "active"
    ]
    assert still_active == []
    assert registry.get_sample_value("pwm_alert_delivered_total", {"sink": "alertmanager"}) == 2
    await dispatcher.close()


async def test_alertmanager_down_then_up_gets_firing_alert_by_resend(
    alertmanager: Alertmanager,
    receiver: WebhookReceiver,
    metrics: AlertingMetrics,
    registry: CollectorRegistry,
) -> None:
    # Alertmanager is down when the alert fires: delivery fails, the periodic re-send brings it.
    alertmanager.stop()
    sink = AlertmanagerSink(alertmanager.url, metrics, resend_interval_s=0.2)
    dispatcher = AlertDispatcher([sink], metrics, retry=RetryPolicy(max_attempts=1))
    await dispatcher.start()
    try:
        firing = event("poolB", starts_at=datetime.now(UTC).replace(microsecond=0))
        dispatcher.publish(firing)
        assert await dispatcher.drain(timeout_s=10)
        dead = registry.get_sample_value("pwm_alert_dead_lettered_total", {"sink": "alertmanager"})
        assert dead == 1
        alertmanager.start()
        await receiver.wait_for(lambda r: len(r.bodies) >= 1, timeout_s=20)
        assert receiver.bodies[0]["alerts"][0]["fingerprint"] == firing.fingerprint
    finally:
        await dispatcher.close()


async def _wait_metric(
    registry: CollectorRegistry, name: str, *, at_least: float, timeout_s: float
) -> None:
    await wait_until(lambda: (registry.get_sample_value(name) or 0.0) >= at_least, timeout_s)
