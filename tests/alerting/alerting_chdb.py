"""Embedded ClickHouse (chDB) for the alerting tests: one engine per process, one database each.

chDB hosts one data path per process, so this reuses the path another test already opened (the
storage tests' engine, if they ran first) and isolates by database instead.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from schemas.migrations import load_migrations
from stream_app.storage.client import StorageClient, get_client, open_chdb_path
from stream_app.storage.migrate import Migrator
from stream_app.storage.settings import StorageSettings

ALERTING_MIGRATIONS = ("alert_history", "rule_audit", "alerting_state")


def alerting_database(base_dir: Path) -> tuple[StorageClient, str]:
    """A fresh database with the alerting tables migrated, on the process's chDB engine."""
    path = open_chdb_path() or str(base_dir)
    database = f"alerting_{uuid.uuid4().hex[:12]}"
    settings = StorageSettings(dsn=f"chdb://{path}", database=database)
    client = get_client(settings)
    ours = [m for m in load_migrations() if m.name in ALERTING_MIGRATIONS]
    assert [m.version for m in ours] == [10, 11, 12]
    Migrator(client, settings, migrations=ours).migrate()
    return client, database


def full_database(base_dir: Path) -> tuple[StorageClient, StorageSettings]:
    """A fresh database with every migration (window tables and alerting tables)."""
    path = open_chdb_path() or str(base_dir)
    database = f"alerting_full_{uuid.uuid4().hex[:12]}"
    settings = StorageSettings(dsn=f"chdb://{path}", database=database)
    client = get_client(settings)
    Migrator(client, settings).migrate()
    return client, settings
