"""Fixtures of the storage tests, all on the real embedded ClickHouse (chDB).

chDB hosts one data path per process: the engine is opened once per session (or the path
another area's tests already opened is reused) and tests are isolated by database.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from storage_store import Store, make_store

from stream_app.storage.client import StorageClient, get_client, open_chdb_path
from stream_app.storage.engines import quote_identifier
from stream_app.storage.settings import StorageSettings


@pytest.fixture(scope="session")
def chdb_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = open_chdb_path() or str(tmp_path_factory.mktemp("chdb"))
    return f"chdb://{path}"


@pytest.fixture(scope="session")
def storage_client(chdb_dsn: str) -> StorageClient:
    return get_client(StorageSettings(dsn=chdb_dsn))


@pytest.fixture
def make_settings(
    chdb_dsn: str, storage_client: StorageClient
) -> Iterator[Callable[..., StorageSettings]]:
    """Settings for a new, uniquely named database (dropped after the test)."""
    databases: list[str] = []

    def make(**overrides: Any) -> StorageSettings:
        database = f"st_{uuid.uuid4().hex[:12]}"
        databases.append(database)
        return StorageSettings(dsn=chdb_dsn, database=database, **overrides)

    yield make
    for database in databases:
        storage_client.command(f"DROP DATABASE IF EXISTS {quote_identifier(database)} SYNC")


@pytest.fixture
def fresh_store(
    make_settings: Callable[..., StorageSettings], storage_client: StorageClient
) -> Store:
    """A database of its own, migrated (for tests that alter tables or stop merges)."""
    return make_store(make_settings(), storage_client)


@pytest.fixture(scope="session")
def _shared_database(chdb_dsn: str, storage_client: StorageClient) -> Iterator[StorageSettings]:
    settings = StorageSettings(dsn=chdb_dsn, database=f"st_shared_{uuid.uuid4().hex[:8]}")
    yield settings
    storage_client.command(f"DROP DATABASE IF EXISTS {quote_identifier(settings.database)} SYNC")


@pytest.fixture
def store(_shared_database: StorageSettings, storage_client: StorageClient) -> Store:
    """The session's shared database; tests isolate by unique pool names and sources.

    ``migrate`` runs each time: a no-op that re-creates the server-wide SQL functions another
    test's rollback may have dropped.
    """
    return make_store(_shared_database, storage_client)


@pytest.fixture
def unique() -> str:
    """A short unique token for pool names and sources of one test."""
    return uuid.uuid4().hex[:10]
