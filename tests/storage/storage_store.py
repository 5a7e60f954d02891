"""A migrated database and the storage objects on it, for the storage tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stream_app.storage.client import StorageClient
from stream_app.storage.engines import quote_identifier
from stream_app.storage.migrate import Migrator
from stream_app.storage.queries import StorageQueries
from stream_app.storage.settings import StorageSettings
from stream_app.storage.sink import ClickHouseSink


@dataclass
class Store:
    """One migrated database and the storage objects on it."""

    settings: StorageSettings
    client: StorageClient
    migrator: Migrator
    sink: ClickHouseSink
    queries: StorageQueries

    @property
    def db(self) -> str:
        return quote_identifier(self.settings.database)

    def scalar(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        return self.client.rows(sql, parameters)[0][0]


def make_store(settings: StorageSettings, client: StorageClient) -> Store:
    migrator = Migrator(client, settings)
    migrator.migrate()
    sink = ClickHouseSink(client, settings)
    return Store(settings, client, migrator, sink, StorageQueries(client, settings.database))
