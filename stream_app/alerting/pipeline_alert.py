"""A publisher that drops the ``PipelineDegraded`` alert: for every engine but the one that
announces it.

Every engine of a runtime is told the pipeline's status (so each holds its rules while the
pipeline is degraded), and each would raise its own copy of the one pipeline-health alert.
Exactly one engine per runtime publishes straight to the dispatcher; the others publish through
:class:`WithoutPipelineAlert`, so the alert is announced once.
"""

from __future__ import annotations

import dataclasses

from schemas.alerts import AlertEvent, AlertStatus
from stream_app.alerting.placement import AlertPublisher
from stream_app.core.rules import PIPELINE_RULE_ID
from stream_app.core.rules.grouping import Notification

__all__ = ["WithoutPipelineAlert"]


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
