"""Wiring: the dispatcher and its sinks from :class:`~.settings.AlertingSettings`.

Sinks, in this order: ``kafka`` (``<prefix>.alerts``, when bootstrap servers are set),
``alertmanager`` (one per URL: ``alertmanager``, ``alertmanager-2``...), ``webhook`` (when a URL
is set), ``history`` (ClickHouse, when enabled and a storage client is given). Every sink shares
the retry policy and the JSONL dead letter.
"""

from __future__ import annotations

from stream_app.alerting.alertmanager_sink import AlertmanagerSink
from stream_app.alerting.dead_letter import JsonlDeadLetter
from stream_app.alerting.dispatcher import AlertDispatcher, AlertSink
from stream_app.alerting.history import ClickHouseAlertHistory
from stream_app.alerting.kafka_sink import KafkaAlertSink
from stream_app.alerting.metrics import AlertingMetrics
from stream_app.alerting.settings import AlertingSettings
from stream_app.alerting.webhook_sink import WebhookSink
from stream_app.storage.client import StorageClient


def build_sinks(
    settings: AlertingSettings,
    metrics: AlertingMetrics,
    *,
    storage: StorageClient | None = None,
    database: str | None = None,
) -> list[AlertSink]:
    """The sinks the settings ask for."""
    sinks: list[AlertSink] = []
    if settings.kafka_bootstrap_servers:
        sinks.append(KafkaAlertSink(settings.kafka_bootstrap_servers, settings.topic_prefix))
    for i, url in enumerate(settings.alertmanager_urls):
        sinks.append(
            AlertmanagerSink(
                str(url),
                metrics,
                name="alertmanager" if i == 0 else f"alertmanager-{i + 1}",
                timeout_s=settings.http_timeout_s,
                resend_interval_s=settings.alertmanager_resend_interval_s,
            )
        )
    if settings.webhook_url is not None:
        sinks.append(
            WebhookSink(
                settings.webhook_url.get_secret_value(),
                body_format=settings.webhook_format,
                accepts=settings.webhook_accepts,
                external_url=settings.generator_url,
                timeout_s=settings.http_timeout_s,
            )
        )
    if settings.history and storage is not None:
        if database is None:
            raise ValueError("the history sink needs the storage database name")
        sinks.append(ClickHouseAlertHistory(storage, database))
    return sinks


def build_dispatcher(
    settings: AlertingSettings,
    metrics: AlertingMetrics,
    *,
    storage: StorageClient | None = None,
    database: str | None = None,
) -> AlertDispatcher:
    """An (unstarted) dispatcher over :func:`build_sinks`."""
    return AlertDispatcher(
        build_sinks(settings, metrics, storage=storage, database=database),
        metrics,
        queue_size=settings.queue_size,
        retry=settings.retry_policy(),
        dead_letter=JsonlDeadLetter(settings.dead_letter_path),
    )
