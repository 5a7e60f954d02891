"""Fixtures of the dashboard tests: the dashboards as provisioned, and a migrated chDB database
holding 13 months of seeded history (seed.py), shared by the package's tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from dashboard_files import load_dashboards
from seed import Seeded, seed

from stream_app.storage.client import StorageClient, get_client, open_chdb_path
from stream_app.storage.engines import quote_identifier
from stream_app.storage.migrate import Migrator
from stream_app.storage.settings import StorageSettings


@pytest.fixture(scope="session")
def dashboards() -> dict[str, dict[str, Any]]:
    return load_dashboards()


@pytest.fixture(scope="session")
def chdb_client(tmp_path_factory: pytest.TempPathFactory) -> StorageClient:
    path = open_chdb_path() or str(tmp_path_factory.mktemp("chdb"))
    return get_client(StorageSettings(dsn=f"chdb://{path}"))


@pytest.fixture(scope="session")
def seeded(chdb_client: StorageClient) -> Iterator[Seeded]:
    settings = StorageSettings(
        dsn=f"chdb://{open_chdb_path()}", database=f"grafana_{uuid.uuid4().hex[:10]}"
    )
    Migrator(chdb_client, settings).migrate()
    yield seed(chdb_client, settings.database, int(time.time()))
    chdb_client.command(f"DROP DATABASE IF EXISTS {quote_identifier(settings.database)} SYNC")
