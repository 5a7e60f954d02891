"""Fixtures of the API tests, on the real embedded ClickHouse (chDB), one database per test.

chDB hosts one data path per process: the path another area's tests opened is reused.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from stream_app.storage.client import StorageClient, get_client, open_chdb_path
from stream_app.storage.engines import quote_identifier
from stream_app.storage.migrate import Migrator
from stream_app.storage.settings import StorageSettings


@pytest.fixture(scope="session")
def api_chdb_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = open_chdb_path() or str(tmp_path_factory.mktemp("chdb"))
    return f"chdb://{path}"


@pytest.fixture
def api_storage(api_chdb_dsn: str) -> Iterator[tuple[StorageSettings, StorageClient]]:
    """A migrated database of its own (dropped afterwards) and the client on it."""
    settings = StorageSettings(dsn=api_chdb_dsn, database=f"api_{uuid.uuid4().hex[:12]}")
    client = get_client(settings)
    Migrator(client, settings).migrate()
    yield settings, client
    client.command(f"DROP DATABASE IF EXISTS {quote_identifier(settings.database)} SYNC")
