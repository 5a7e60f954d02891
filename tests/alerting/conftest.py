"""Fixtures of the alerting tests: fresh metrics registries and a loopback webhook receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from alert_webhook_receiver import WebhookReceiver
from alerting_chdb import alerting_database
from prometheus_client import CollectorRegistry

from stream_app.alerting.metrics import AlertingMetrics
from stream_app.storage.client import StorageClient


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> AlertingMetrics:
    return AlertingMetrics(registry)


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    rec = WebhookReceiver()
    await rec.start()
    yield rec
    await rec.stop()


@pytest.fixture(scope="module")
def chdb_database(tmp_path_factory: pytest.TempPathFactory) -> tuple[StorageClient, str]:
    """(client, database) with the alerting tables, fresh per test module."""
    return alerting_database(tmp_path_factory.mktemp("chdb"))
