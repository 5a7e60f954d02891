"""Fan-out of alert events to the delivery sinks, never blocking the caller.

The window-processing loop calls :meth:`AlertDispatcher.publish` (state changes: every sink whose
``accepts`` is ``"events"``) and :meth:`AlertDispatcher.publish_notification` (grouped
notifications from the engine's Alertmanager-style grouping: sinks accepting
``"notifications"``, e.g. a chat webhook). Both only do ``put_nowait`` into one bounded queue
per sink. When a sink is stuck its queue fills up and the
*oldest* queued event is dropped (and counted in ``pwm_alert_dropped_total{sink}``): a newer state
of an alert is worth more than an old one, and Alertmanager gets every firing alert again from the
periodic re-send anyway. Each sink has its own worker task that delivers events in order, retries
transient failures (:class:`~.errors.DeliveryUnavailable`) with exponential backoff and jitter, and
dead-letters poison events (:class:`~.errors.DeliveryRejected`) and events whose attempts are spent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping, Sequence
from typing import Literal, Protocol

from schemas.alerts import AlertEvent
from stream_app.alerting.backoff import RetryPolicy
from stream_app.alerting.dead_letter import DeadLetter
from stream_app.alerting.errors import AlertingError, DeliveryRejected
from stream_app.alerting.metrics import AlertingMetrics
from stream_app.core.rules.grouping import Notification

logger = logging.getLogger(__name__)


Deliverable = AlertEvent | Notification
Accepts = Literal["events", "notifications"]


class AlertSink(Protocol):
    """A delivery target. ``deliver`` raises DeliveryUnavailable or DeliveryRejected on failure.

    A sink whose ``accepts`` is ``"events"`` gets :class:`AlertEvent` items, one with
    ``"notifications"`` gets :class:`Notification` items.
    """

    @property
    def name(self) -> str: ...

    @property
    def accepts(self) -> Accepts: ...

    async def start(self) -> None: ...

    async def deliver(self, item: Deliverable) -> None: ...

    async def close(self) -> None: ...


def describe(item: Deliverable) -> str:
    """A short log text for an item (fingerprint or group key, and status)."""
    if isinstance(item, AlertEvent):
        return f"alert {item.fingerprint} ({item.status.value})"
    return f"notification {item.group_key} ({item.status.value}, {len(item.alerts)} alert(s))"


def only_events(item: Deliverable, sink: str) -> AlertEvent:
    """``item`` as an AlertEvent; DeliveryRejected for anything else (a wiring bug)."""
    if not isinstance(item, AlertEvent):
        raise DeliveryRejected(f"sink {sink} accepts alert events, got {describe(item)}")
    return item


class _Lane:
    """One sink, its bounded queue and its worker task."""

    def __init__(self, sink: AlertSink, queue_size: int, retry: RetryPolicy) -> None:
        self.sink = sink
        self.queue: asyncio.Queue[Deliverable] = asyncio.Queue(maxsize=queue_size)
        self.retry = retry
        self.task: asyncio.Task[None] | None = None


class AlertDispatcher:
    """Delivers every published alert event to every sink, each at its own pace."""

    def __init__(
        self,
        sinks: Sequence[AlertSink],
        metrics: AlertingMetrics,
        *,
        queue_size: int = 1000,
        retry: RetryPolicy | None = None,
        retry_by_sink: Mapping[str, RetryPolicy] | None = None,
        dead_letter: DeadLetter | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be >= 1")
        names = [s.name for s in sinks]
        if len(set(names)) != len(names):
            raise ValueError(f"sink names must be unique, got {names}")
        default = retry or RetryPolicy()
        overrides = retry_by_sink or {}
        self._lanes = [_Lane(s, queue_size, overrides.get(s.name, default)) for s in sinks]
        self._metrics = metrics
        self._dead_letter = dead_letter
        self._rng = rng or random.Random()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False
        self._given_up: dict[str, int] = {}

    @property
    def sink_names(self) -> list[str]:
        return [lane.sink.name for lane in self._lanes]

    async def start(self) -> None:
        """Start every sink and its worker task (call once, from the loop that publishes)."""
        if self._started:
            return
        self._loop = asyncio.get_running_loop()
        for lane in self._lanes:
            await lane.sink.start()
            lane.task = asyncio.create_task(self._run(lane), name=f"alert-sink-{lane.sink.name}")
        self._started = True

    def publish(self, event: AlertEvent) -> None:
        """Queue ``event`` for every event sink; returns at once, dropping the oldest when full."""
        self._enqueue(event, "events")

    def publish_notification(self, notification: Notification) -> None:
        """Queue a grouped notification for every notification sink (never blocks)."""
        self._enqueue(notification, "notifications")

    def _enqueue(self, event: Deliverable, kind: Accepts) -> None:
        for lane in self._lanes:
            if lane.sink.accepts != kind:
                continue
            name = lane.sink.name
            try:
                lane.queue.put_nowait(event)
            except asyncio.QueueFull:
                with contextlib.suppress(asyncio.QueueEmpty):
                    lane.queue.get_nowait()
                    lane.queue.task_done()
                    self._metrics.dropped.labels(name).inc()
                lane.queue.put_nowait(event)
            self._metrics.enqueued.labels(name).inc()
            self._metrics.queue_depth.labels(name).set(lane.queue.qsize())

    def publish_threadsafe(self, event: AlertEvent) -> None:
        """:meth:`publish` from another thread (hands the event to the dispatcher's loop)."""
        if self._loop is None:
            raise RuntimeError("dispatcher not started")
        self._loop.call_soon_threadsafe(self.publish, event)

    async def drain(self, timeout_s: float) -> bool:
        """Wait until every queued event was handled (delivered or dead-lettered)."""
        try:
            async with asyncio.timeout(timeout_s):
                for lane in self._lanes:
                    await lane.queue.join()
        except TimeoutError:
            return False
        return True

    async def close(self, drain_timeout_s: float = 5.0) -> None:
        """Drain for up to ``drain_timeout_s``, dead-letter what is left, close the sinks."""
        if not self._started:
            return
        await self.drain(drain_timeout_s)
        for lane in self._lanes:
            if lane.task is not None:
                lane.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await lane.task
            while not lane.queue.empty():
                event = lane.queue.get_nowait()
                lane.queue.task_done()
                await self._give_up(lane, event, "shutdown before delivery", 0)
            self._metrics.queue_depth.labels(lane.sink.name).set(0)
            try:
                await lane.sink.close()
            except Exception:
                logger.exception("closing alert sink %s failed", lane.sink.name)
        self._started = False

    async def _run(self, lane: _Lane) -> None:
        while True:
            event = await lane.queue.get()
            try:
                await self._deliver(lane, event)
            finally:
                lane.queue.task_done()
                self._metrics.queue_depth.labels(lane.sink.name).set(lane.queue.qsize())

    async def _deliver(self, lane: _Lane, event: Deliverable) -> None:
        name = lane.sink.name
        policy = lane.retry
        for attempt in range(1, policy.max_attempts + 1):
            try:
                await lane.sink.deliver(event)
            except AlertingError as exc:
                if not exc.retriable or attempt == policy.max_attempts:
                    await self._give_up(lane, event, f"{type(exc).__name__}: {exc}", attempt)
                    return
                self._metrics.retries.labels(name).inc()
                await asyncio.sleep(policy.delay_s(attempt, self._rng))
            except Exception as exc:
                # A bug in a sink must not kill its lane: treat the event as poison.
                logger.exception("alert sink %s failed unexpectedly", name)
                await self._give_up(lane, event, f"{type(exc).__name__}: {exc}", attempt)
                return
            else:
                self._metrics.delivered.labels(name).inc()
                return

    async def _give_up(self, lane: _Lane, event: Deliverable, reason: str, attempts: int) -> None:
        name = lane.sink.name
        self._metrics.dead_lettered.labels(name).inc()
        count = self._given_up[name] = self._given_up.get(name, 0) + 1
        if count == 1 or count % 100 == 0:  # a stuck sink: the counter tells the rest
            logger.warning(
                "%s not delivered to %s after %d attempt(s) (%d given up so far): %s",
                describe(event),
                name,
                attempts,
                count,
                reason,
            )
        if self._dead_letter is not None:
            await self._dead_letter.write(name, event, reason, attempts)
