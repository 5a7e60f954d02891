"""AlertDispatcher: never blocks the publisher, drops oldest when a sink is stuck, retries with
backoff, dead-letters poison and exhausted events, keeps sinks independent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alert_test_events import event
from alert_webhook_receiver import WebhookReceiver
from prometheus_client import CollectorRegistry

from schemas.alerts import AlertEvent
from stream_app.alerting.backoff import RetryPolicy
from stream_app.alerting.dead_letter import JsonlDeadLetter
from stream_app.alerting.dispatcher import AlertDispatcher
from stream_app.alerting.errors import DeliveryRejected, DeliveryUnavailable
from stream_app.alerting.metrics import AlertingMetrics
from stream_app.alerting.webhook_sink import WebhookSink

FAST = RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.05)


class GatedSink:
    """A sink that delivers only once its gate opens (a stuck downstream until then)."""

    def __init__(self, name: str, *, open_: bool = False) -> None:
        self._name = name
        self.gate = asyncio.Event()
        if open_:
            self.gate.set()
        self.delivered: list[AlertEvent] = []
        self.started = False
        self.closed = False
        self._changed = asyncio.Condition()

    async def wait_delivered(self, count: int, timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(lambda: len(self.delivered) >= count)

    accepts = "events"

    @property
    def name(self) -> str:
        return self._name

    async def start(self) -> None:
        self.started = True

    async def deliver(self, event: AlertEvent) -> None:
        await self.gate.wait()
        async with self._changed:
            self.delivered.append(event)
            self._changed.notify_all()

    async def close(self) -> None:
        self.closed = True


class ScriptedSink:
    """Raises the given errors in order, then succeeds."""

    def __init__(self, errors: list[Exception]) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.delivered: list[AlertEvent] = []

    accepts = "events"

    @property
    def name(self) -> str:
        return "scripted"

    async def start(self) -> None:
        return None

    async def deliver(self, event: AlertEvent) -> None:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        self.delivered.append(event)

    async def close(self) -> None:
        return None


def sample(registry: CollectorRegistry, name: str, sink: str) -> float:
    value = registry.get_sample_value(name, {"sink": sink})
    return 0.0 if value is None else value


async def test_stuck_sink_drops_oldest_and_never_blocks_publisher(
    metrics: AlertingMetrics, registry: CollectorRegistry
) -> None:
    stuck = GatedSink("stuck")
    healthy = GatedSink("healthy", open_=True)
    dispatcher = AlertDispatcher([stuck, healthy], metrics, queue_size=10)
    await dispatcher.start()
    events = [event(seq=i) for i in range(1000)]
    for ev in events:
        # publish is synchronous: it cannot await a sink, whatever the sink does.
        assert dispatcher.publish(ev) is None  # type: ignore[func-returns-value]
    assert sample(registry, "pwm_alert_dropped_total", "stuck") == 990
    assert sample(registry, "pwm_alert_dropped_total", "healthy") == 990
    assert sample(registry, "pwm_alert_queue_depth", "stuck") == 10

    # The healthy sink drains its queue while the other one is still stuck.
    await healthy.wait_delivered(10, timeout_s=5)
    assert stuck.delivered == []
    # Still stuck: more publishes keep returning at once and keep dropping the oldest.
    for i in range(1000, 1005):
        dispatcher.publish(event(seq=i))
    stuck.gate.set()
    assert await dispatcher.drain(timeout_s=5)
    delivered = [int(e.value or 0) for e in stuck.delivered]
    # One event was already in the stuck sink's hands; the rest are the newest, in order.
    assert delivered == sorted(delivered)
    assert delivered[-1] == 1004
    assert len(delivered) == 11
    assert sample(registry, "pwm_alert_delivered_total", "stuck") == 11
    await dispatcher.close()
    assert stuck.closed
    assert healthy.closed


async def test_transient_failures_are_retried_then_delivered(
    metrics: AlertingMetrics, registry: CollectorRegistry, tmp_path: Path
) -> None:
    sink = ScriptedSink([DeliveryUnavailable("HTTP 503"), DeliveryUnavailable("timeout")])
    dead = JsonlDeadLetter(tmp_path / "dead.jsonl")
    dispatcher = AlertDispatcher([sink], metrics, retry=FAST, dead_letter=dead)
    await dispatcher.start()
    dispatcher.publish(event(seq=7))
    assert await dispatcher.drain(timeout_s=5)
    assert sink.calls == 3
    assert [e.value for e in sink.delivered] == [7.0]
    assert sample(registry, "pwm_alert_delivery_retries_total", "scripted") == 2
    assert sample(registry, "pwm_alert_dead_lettered_total", "scripted") == 0
    assert dead.read() == []
    await dispatcher.close()


async def test_poison_is_dead_lettered_without_retry(
    metrics: AlertingMetrics, registry: CollectorRegistry, tmp_path: Path
) -> None:
    sink = ScriptedSink([DeliveryRejected("HTTP 400: bad label")])
    dead = JsonlDeadLetter(tmp_path / "dead.jsonl")
    dispatcher = AlertDispatcher([sink], metrics, retry=FAST, dead_letter=dead)
    await dispatcher.start()
    ev = event(seq=3)
    dispatcher.publish(ev)
    dispatcher.publish(event(seq=4))
    assert await dispatcher.drain(timeout_s=5)
    assert sink.calls == 2
    assert [e.value for e in sink.delivered] == [4.0]
    (record,) = dead.read()
    assert record["sink"] == "scripted"
    assert record["attempts"] == 1
    assert "bad label" in record["reason"]
    assert (
        AlertEvent.model_validate({k: v for k, v in record["event"].items() if k != "fingerprint"})
        == ev
    )
    assert sample(registry, "pwm_alert_dead_lettered_total", "scripted") == 1
    await dispatcher.close()


async def test_unexpected_sink_bug_does_not_kill_the_lane(
    metrics: AlertingMetrics, tmp_path: Path
) -> None:
    sink = ScriptedSink([RuntimeError("bug")])
    dispatcher = AlertDispatcher(
        [sink], metrics, retry=FAST, dead_letter=JsonlDeadLetter(tmp_path / "d.jsonl")
    )
    await dispatcher.start()
    dispatcher.publish(event(seq=1))
    dispatcher.publish(event(seq=2))
    assert await dispatcher.drain(timeout_s=5)
    assert [e.value for e in sink.delivered] == [2.0]
    await dispatcher.close()


async def test_webhook_retries_with_backoff_then_delivers(
    metrics: AlertingMetrics, registry: CollectorRegistry, receiver: WebhookReceiver
) -> None:
    receiver.fail_first = 2
    dispatcher = AlertDispatcher([WebhookSink(receiver.url)], metrics, retry=FAST)
    await dispatcher.start()
    ev = event(seq=5)
    dispatcher.publish(ev)
    await receiver.wait_for(lambda r: len(r.bodies) == 1, timeout_s=10)
    assert receiver.attempts == 3
    body = receiver.bodies[0]
    assert body["labels"] == ev.labels
    assert body["fingerprint"] == ev.fingerprint
    assert body["status"] == "firing"
    assert receiver.content_types[0].startswith("application/json")
    assert await dispatcher.drain(timeout_s=5)
    assert sample(registry, "pwm_alert_delivery_retries_total", "webhook") == 2
    assert sample(registry, "pwm_alert_delivered_total", "webhook") == 1
    await dispatcher.close()


async def test_webhook_dead_letters_after_attempts_spent(
    metrics: AlertingMetrics, registry: CollectorRegistry, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    receiver.fail_first = 10**6
    dead = JsonlDeadLetter(tmp_path / "alerts" / "dead.jsonl")
    dispatcher = AlertDispatcher(
        [WebhookSink(receiver.url + "?token=s3cret")], metrics, retry=FAST, dead_letter=dead
    )
    await dispatcher.start()
    ev = event(seq=9)
    dispatcher.publish(ev)
    assert await dispatcher.drain(timeout_s=10)
    assert receiver.attempts == FAST.max_attempts
    (record,) = dead.read()
    assert record["attempts"] == FAST.max_attempts
    assert record["sink"] == "webhook"
    assert "503" in record["reason"]
    assert "s3cret" not in record["reason"]
    assert record["event"]["fingerprint"] == ev.fingerprint
    assert sample(registry, "pwm_alert_dead_lettered_total", "webhook") == 1
    await dispatcher.close()


async def test_webhook_client_error_is_poison(
    metrics: AlertingMetrics, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    receiver.fail_first = 10**6
    receiver.fail_status = 400
    dead = JsonlDeadLetter(tmp_path / "dead.jsonl")
    dispatcher = AlertDispatcher([WebhookSink(receiver.url)], metrics, retry=FAST, dead_letter=dead)
    await dispatcher.start()
    dispatcher.publish(event())
    assert await dispatcher.drain(timeout_s=10)
    assert receiver.attempts == 1
    assert dead.read()[0]["reason"].startswith("DeliveryRejected")
    await dispatcher.close()


async def test_unreachable_webhook_is_retriable(metrics: AlertingMetrics, tmp_path: Path) -> None:
    # A port nothing listens on: connection refused is a transient failure.
    probe = WebhookReceiver()
    url = await probe.start()
    await probe.stop()
    dead = JsonlDeadLetter(tmp_path / "dead.jsonl")
    dispatcher = AlertDispatcher([WebhookSink(url)], metrics, retry=FAST, dead_letter=dead)
    await dispatcher.start()
    dispatcher.publish(event())
    assert await dispatcher.drain(timeout_s=10)
    (record,) = dead.read()
    assert record["attempts"] == FAST.max_attempts
    assert record["reason"].startswith("DeliveryUnavailable")
    await dispatcher.close()


async def test_close_dead_letters_what_is_still_queued(
    metrics: AlertingMetrics, tmp_path: Path
) -> None:
    stuck = GatedSink("stuck")
    dead = JsonlDeadLetter(tmp_path / "dead.jsonl")
    dispatcher = AlertDispatcher([stuck], metrics, dead_letter=dead)
    await dispatcher.start()
    for i in range(3):
        dispatcher.publish(event(seq=i))
    await dispatcher.close(drain_timeout_s=0.1)
    reasons = [r["reason"] for r in dead.read()]
    # The first event was in the sink's hands when the lane was cancelled; two were queued.
    assert reasons == ["shutdown before delivery"] * 2


async def test_publish_threadsafe_from_another_thread(metrics: AlertingMetrics) -> None:
    sink = GatedSink("s", open_=True)
    dispatcher = AlertDispatcher([sink], metrics)
    await dispatcher.start()
    await asyncio.to_thread(dispatcher.publish_threadsafe, event(seq=1))
    await sink.wait_delivered(1, timeout_s=5)
    await dispatcher.close()


def test_retry_policy_delays_grow_and_are_capped() -> None:
    policy = RetryPolicy(max_attempts=10, initial_backoff_s=0.1, max_backoff_s=1.0)
    for retry, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        delays = [policy.delay_s(retry) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1  # jittered
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


def test_sink_names_must_be_unique(metrics: AlertingMetrics) -> None:
    with pytest.raises(ValueError, match="unique"):
        AlertDispatcher([GatedSink("a"), GatedSink("a")], metrics)
