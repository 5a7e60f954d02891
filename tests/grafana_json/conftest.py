"""Fixtures of the Grafana JSON datasource tests: one chDB database per module, seeded once
with the REST tests' history, a small contract fleet (poolA, poolB in eu) and alert history."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from stream_app.storage.client import StorageClient, get_client
from stream_app.storage.engines import quote_identifier
from stream_app.storage.migrate import Migrator
from stream_app.storage.settings import StorageSettings
from tests.api.conftest import api_chdb_dsn
from tests.api.rest_support import History, seeded_history, write
from tests.grafana_json.support import NOW_MS, contract_events, seed_alerts

__all__ = ["api_chdb_dsn", "grafana_history", "grafana_storage"]

Storage = tuple[StorageSettings, StorageClient]


@pytest.fixture(scope="module")
def grafana_storage(api_chdb_dsn: str) -> Iterator[Storage]:
    """A migrated database of this module's own, seeded (dropped afterwards)."""
    settings = StorageSettings(dsn=api_chdb_dsn, database=f"gjson_{uuid.uuid4().hex[:12]}")
    client = get_client(settings)
    Migrator(client, settings).migrate()
    storage = (settings, client)
    write(storage, [*seeded_history(NOW_MS).events, *contract_events(NOW_MS)])
    seed_alerts(storage)
    yield storage
    client.command(f"DROP DATABASE IF EXISTS {quote_identifier(settings.database)} SYNC")


@pytest.fixture(scope="module")
def grafana_history(grafana_storage: Storage) -> History:
    """The history seeded into :func:`grafana_storage` (the same seed gives the same events)."""
    return seeded_history(NOW_MS)
