"""Pipeline health of the embedded service, as the rule engines want it.

- :class:`PipelineProbe` turns the :class:`~stream_app.embedded.pipeline.EmbeddedPipeline`'s
  counters and watermark into a :class:`~stream_app.core.rules.PipelineStatus`.
- :class:`WithoutPipelineAlert` wraps the fleet engine's publisher: both engines are told the
  status (so both hold their rules while degraded), but only the per-scope engine's
  ``PipelineDegraded`` alert is delivered; the fleet engine's identical copy is dropped here, so
  the alert is announced once.
"""

from __future__ import annotations

import dataclasses

from schemas.alerts import AlertEvent, AlertStatus
from stream_app.alerting.placement import AlertPublisher
from stream_app.core.rules import PIPELINE_RULE_ID, PipelineStatus
from stream_app.core.rules.grouping import Notification
from stream_app.embedded.pipeline import EmbeddedPipeline


class PipelineProbe:
    """The embedded pipeline's health as the rule engine wants it.

    ``sink_ok`` is False while the sink's writes are being retried: since the previous probe the
    retry counter moved and no write went through. ``lag_ms`` is None: records wait in the
    bounded hand-off only, and a pipeline that falls behind (or a stuck sink) shows as a stale
    watermark, which the engine measures against its wall clock.
    """

    def __init__(self, pipeline: EmbeddedPipeline) -> None:
        self._pipeline = pipeline
        self._retries = pipeline.stats.sink_retries
        self._flushes = pipeline.stats.flushes
        self.sink_ok = True

    def status(self) -> PipelineStatus:
        stats = self._pipeline.stats
        if stats.flushes != self._flushes:
            self.sink_ok = True
        elif stats.sink_retries != self._retries:
            self.sink_ok = False
        self._retries, self._flushes = stats.sink_retries, stats.flushes
        return PipelineStatus(
            lag_ms=None, sink_ok=self.sink_ok, watermark_ms=self._pipeline.aggregator.watermark_ms
        )


def _is_pipeline_alert(event: AlertEvent) -> bool:
    return event.labels.get("rule_id") == PIPELINE_RULE_ID


class WithoutPipelineAlert:
    """A publisher passing everything but the pipeline-health alert (the fleet engine's copy)."""

    def __init__(self, publisher: AlertPublisher) -> None:
        self._publisher = publisher

    def publish(self, event: AlertEvent) -> None:
        if not _is_pipeline_alert(event):
            self._publisher.publish(event)

    def publish_notification(self, notification: Notification) -> None:
        alerts = tuple(a for a in notification.alerts if not _is_pipeline_alert(a))
        if len(alerts) == len(notification.alerts):
            self._publisher.publish_notification(notification)
            return
        if not alerts:
            return
        firing = any(a.status is AlertStatus.FIRING for a in alerts)
        self._publisher.publish_notification(
            dataclasses.replace(
                notification,
                alerts=alerts,
                status=AlertStatus.FIRING if firing else AlertStatus.RESOLVED,
            )
        )
