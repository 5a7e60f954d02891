"""Errors of the storage package (ClickHouse through clickhouse-connect, embedded chDB or server).

Third-party errors (``clickhouse_connect.driver.exceptions``, chDB's, ``OSError`` around the
engine) are translated where the storage calls them (:mod:`stream_app.storage.client`); nothing
outside this package sees a clickhouse-connect exception.

``StorageError``
    Base of everything this package raises. ``retriable`` tells the caller what to do.
``SinkUnavailable`` (retriable)
    The store cannot take the call right now: connection refused or reset, timeouts, the server
    overloaded (too many parts, memory limit, too many queries), read-only replicas. Back off
    and retry the same call; inserts are idempotent, so a retry never double counts. The sink
    itself retries a bounded number of times before raising it.
``SinkRejected`` (poison)
    The store refused the statement: an unknown table or column (the schema is not migrated),
    a syntax error, a missing permission. Retrying cannot help: fix the deployment. A worker
    stops on it with a non-zero exit (an infrastructure failure, not the data's fault).
``DataRejected`` (poison, a ``SinkRejected``)
    The store refused the *data*: a value out of its column's range, a type mismatch, a value
    the client cannot encode. The sink isolates the rows at fault (bisecting the insert) and
    stores the rest; the runtime dead-letters those rows with the reason and goes on.
``MigrationError`` (poison)
    A migration could not be applied or rolled back, or an applied migration was edited. The
    message names the migration (``0002_rollups``) and the statement that failed; when the
    server was merely unreachable its ``__cause__`` is a :class:`SinkUnavailable`, and start-up
    may retry.
``StorageConfigError`` (poison)
    The storage configuration cannot work, e.g. a second chDB data path in one process.
``StoreInUse`` (a ``StorageConfigError``, poison)
    The embedded store is held by another process (:mod:`stream_app.storage.store_lock`); the
    message names the store and says what to do instead.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "DataRejected",
    "MigrationError",
    "SinkRejected",
    "SinkUnavailable",
    "StorageConfigError",
    "StorageError",
    "StoreInUse",
]


class StorageError(Exception):
    """Base class of the errors raised by :mod:`stream_app.storage`."""

    retriable: ClassVar[bool] = False


class SinkUnavailable(StorageError):
    """The store is unreachable or overloaded: back off and retry (retriable)."""

    retriable = True


class SinkRejected(StorageError):
    """The store refused the statement or the data: retrying cannot help (poison)."""


class DataRejected(SinkRejected):
    """The store refused the data of the rows written (poison for those rows only)."""


class MigrationError(StorageError):
    """A migration failed, or an applied migration no longer matches its file (poison)."""


class StorageConfigError(StorageError):
    """The storage configuration cannot work in this process (poison)."""


class StoreInUse(StorageConfigError):
    """Another process holds the embedded store (poison: ask that process's API instead)."""

    def __init__(self, message: str, *, store: str) -> None:
        super().__init__(message)
        self.store = store
