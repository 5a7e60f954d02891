"""Fixtures of the worker tests: the process's embedded ClickHouse, one database per test.

chDB hosts one data path per process: in-process workers share the engine another area's
tests may already have opened (isolated by database); subprocess workers get their own path.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from stream_app.storage.client import get_client, open_chdb_path
from stream_app.storage.engines import quote_identifier
from stream_app.storage.settings import StorageSettings


@pytest.fixture(scope="session")
def worker_chdb_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = open_chdb_path() or str(tmp_path_factory.mktemp("worker-chdb"))
    return f"chdb://{path}"


@pytest.fixture
def worker_storage(worker_chdb_dsn: str) -> Iterator[StorageSettings]:
    """Storage settings on a fresh database of the process's engine (dropped afterwards)."""
    settings = StorageSettings(
        dsn=worker_chdb_dsn,
        database=f"worker_{uuid.uuid4().hex[:12]}",
        insert_retries=1,
        retry_backoff_s=0.05,
        retry_backoff_max_s=0.2,
    )
    yield settings
    get_client(settings).command(
        f"DROP DATABASE IF EXISTS {quote_identifier(settings.database)} SYNC"
    )
