"""Fixtures of the export tests: the real embedded ClickHouse (chDB), one database per test,
seeded through the real sink (tests/api/rest_support.py)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from stream_app.storage.client import StorageClient, get_client, open_chdb_path
from stream_app.storage.engines import quote_identifier
from stream_app.storage.migrate import Migrator
from stream_app.storage.settings import StorageSettings
from tests.api.rest_support import WINDOW_MS, History, seeded_history, write

Storage = tuple[StorageSettings, StorageClient]

# a window boundary, recent enough for every table's TTL
NOW_MS = time.time_ns() // 1_000_000 // WINDOW_MS * WINDOW_MS


@pytest.fixture(scope="session")
def export_chdb_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = open_chdb_path() or str(tmp_path_factory.mktemp("chdb"))
    return f"chdb://{path}"


@pytest.fixture(scope="module")
def export_storage(export_chdb_dsn: str) -> Iterator[Storage]:
    """A migrated database per test module (dropped afterwards) and the client on it. The
    tests read it; those that write (alert history) write what the others do not look at."""
    settings = StorageSettings(dsn=export_chdb_dsn, database=f"exp_{uuid.uuid4().hex[:12]}")
    client = get_client(settings)
    Migrator(client, settings).migrate()
    yield settings, client
    client.command(f"DROP DATABASE IF EXISTS {quote_identifier(settings.database)} SYNC")


@pytest.fixture(scope="module")
def history(export_storage: Storage) -> History:
    """40 minutes of seeded traffic, 2 pools x 2 regions, ending at NOW_MS."""
    seeded = seeded_history(NOW_MS)
    write(export_storage, seeded.events)
    return seeded
