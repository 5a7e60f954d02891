"""The one adapter over clickhouse-connect: client factory, serialised calls, translated errors.

One client per process per DSN (:func:`get_client`): ``chdb:///abs/path`` opens the embedded
engine (the directory is created if missing), ``http(s)://`` reaches a server; the same SQL and
the same code path serve both. chDB hosts ONE engine (one data path) per process and has no
async client: callers in asyncio code run these calls with :func:`asyncio.to_thread`.

Every clickhouse-connect or chDB exception is translated here (:func:`translate_error`) into the
storage errors of :mod:`stream_app.storage.errors`, retriable or poison.
"""

from __future__ import annotations

import contextlib
import logging
import struct
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import (
    ClickHouseError,
    DatabaseError,
    DataError,
    OperationalError,
)

from stream_app.storage.errors import (
    DataRejected,
    SinkRejected,
    SinkUnavailable,
    StorageConfigError,
    StorageError,
)
from stream_app.storage.settings import StorageSettings, redact_dsn
from stream_app.storage.store_lock import StoreLock, store_in_use

__all__ = [
    "RETRIABLE_SERVER_CODES",
    "StorageClient",
    "close_all_clients",
    "get_client",
    "open_chdb_path",
    "store_lock",
    "translate_error",
]

logger = logging.getLogger(__name__)

RETRIABLE_SERVER_CODES = frozenset(
    {
        3,  # UNEXPECTED_END_OF_FILE
        159,  # TIMEOUT_EXCEEDED
        164,  # READONLY
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        203,  # NO_FREE_CONNECTION
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        236,  # ABORTED
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        252,  # TOO_MANY_PARTS
        285,  # TOO_FEW_LIVE_REPLICAS
        319,  # UNKNOWN_STATUS_OF_INSERT
        394,  # QUERY_WAS_CANCELLED
        425,  # SYSTEM_ERROR
        439,  # CANNOT_SCHEDULE_TASK
        473,  # DEADLOCK_AVOIDED
        999,  # KEEPER_EXCEPTION
        1000,  # POCO_EXCEPTION
    }
)
"""ClickHouse error codes meaning "not now" rather than "never"."""

_DATA_SERVER_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        131,  # TOO_LARGE_STRING_SIZE
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        407,  # DECIMAL_OVERFLOW
    }
)
"""ClickHouse error codes meaning "not this data" rather than "not this statement"."""

_CLIENT_DATA_ERRORS = (ValueError, TypeError, OverflowError, KeyError, struct.error)


def translate_error(exc: BaseException, action: str) -> StorageError:
    """The storage error for a third-party exception raised while doing ``action``."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, OperationalError):
        return SinkUnavailable(f"{action}: ClickHouse unreachable: {exc}")
    if isinstance(exc, DatabaseError) and exc.code in RETRIABLE_SERVER_CODES:
        return SinkUnavailable(f"{action}: ClickHouse busy (code {exc.code}): {exc}")
    if isinstance(exc, DataError) or (
        isinstance(exc, DatabaseError) and exc.code in _DATA_SERVER_CODES
    ):
        return DataRejected(f"{action}: ClickHouse refused the data: {exc}")
    if isinstance(exc, ClickHouseError):
        return SinkRejected(f"{action}: ClickHouse refused it: {exc}")
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return SinkUnavailable(f"{action}: {type(exc).__name__}: {exc}")
    if isinstance(exc, OSError):
        # Around the embedded engine: temp files for inserts, the data directory.
        return SinkUnavailable(f"{action}: I/O error: {exc}")
    if isinstance(exc, _CLIENT_DATA_ERRORS):
        return DataRejected(f"{action}: data cannot be encoded: {type(exc).__name__}: {exc}")
    return SinkRejected(f"{action}: unexpected {type(exc).__name__}: {exc}")


class StorageClient:
    """A clickhouse-connect client whose calls raise storage errors only."""

    def __init__(self, client: Client, dsn: str) -> None:
        self._client = client
        self.dsn = dsn  # without its password (see get_client): safe to log
        self.embedded = dsn.startswith("chdb:")
        # The embedded engine's connection is not safe for concurrent use: the sink, the alert
        # history, the rule state and the readers call it from several threads, one at a time.
        self._serial: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if self.embedded else contextlib.nullcontext()
        )

    def knows_setting(self, name: str) -> bool:
        """True when the server lists ``name`` in system.settings (settings differ by version)."""
        return name in self._client.server_settings

    def command(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> Any:
        """Run a statement (DDL, ALTER, SYSTEM); returns the server's short answer."""
        try:
            with self._serial:
                return self._client.command(
                    sql,
                    parameters=dict(parameters) if parameters else None,
                    settings=dict(settings) if settings else None,
                )
        except Exception as exc:
            raise translate_error(exc, "command") from exc

    def rows(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> list[tuple[Any, ...]]:
        """Run a query with server-side parameters; returns its rows as tuples."""
        _, rows = self._query(sql, parameters, settings)
        return [tuple(row) for row in rows]

    def named_rows(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Run a query with server-side parameters; returns each row as ``{column: value}``,
        so readers decode columns by their name (``AS`` alias), never by position."""
        names, rows = self._query(sql, parameters, settings)
        return [dict(zip(names, row, strict=True)) for row in rows]

    def _query(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None,
        settings: Mapping[str, Any] | None,
    ) -> tuple[Sequence[str], Sequence[Sequence[Any]]]:
        try:
            with self._serial:
                result = self._client.query(
                    sql,
                    parameters=dict(parameters) if parameters else None,
                    settings=dict(settings) if settings else None,
                )
            return tuple(result.column_names), result.result_rows
        except Exception as exc:
            raise translate_error(exc, "query") from exc

    @contextlib.contextmanager
    def stream(
        self,
        sql: str,
        fmt: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        chunk_bytes: int = 1 << 16,
    ) -> Iterator[Iterator[bytes]]:
        """Run a query and yield its result as raw bytes in ClickHouse's ``fmt`` (``CSV``,
        ``JSONEachRow``, ``ArrowStream`` ...), read ``chunk_bytes`` at a time
        (clickhouse-connect ``raw_stream``). A server streams every format; the embedded engine
        streams the formats without a global header or footer (CSV, JSONEachRow, Native ...) and
        answers the others in one piece. The call holds the client (embedded: serialised) until
        the block exits; settings go in the query's own SETTINGS clause (per-call settings make
        the embedded engine answer in one piece)."""
        with self._serial:
            try:
                raw = self._client.raw_stream(
                    sql, parameters=dict(parameters) if parameters else None, fmt=fmt
                )
            except Exception as exc:
                raise translate_error(exc, "stream") from exc
            try:
                yield _chunks(raw, chunk_bytes)
            finally:
                with contextlib.suppress(Exception):
                    raw.close()  # type: ignore[union-attr]

    def insert_columns(
        self,
        table: str,
        columns: Sequence[Sequence[Any]],
        column_names: Sequence[str],
        settings: Mapping[str, Any] | None = None,
    ) -> int:
        """Insert column-oriented data in one statement; returns the rows written."""
        try:
            with self._serial:
                summary = self._client.insert(
                    table,
                    columns,
                    column_names=list(column_names),
                    column_oriented=True,
                    settings=dict(settings) if settings else None,
                )
        except Exception as exc:
            raise translate_error(exc, f"insert into {table}") from exc
        return int(summary.written_rows)

    def prepare_inserts(self) -> None:
        """Load now what clickhouse-connect loads on the first insert: it looks whether the
        data is a pandas DataFrame, importing pandas when installed (0.3 s), which would
        otherwise delay the first flush of a writer."""
        from clickhouse_connect.driver import options

        getattr(options, "pd", None)

    def close(self) -> None:
        """Release the connection (the embedded engine stays open for the process)."""
        try:
            self._client.close()
        except Exception as exc:  # closing is best effort
            logger.debug("closing the ClickHouse client for %s failed: %s", self.dsn, exc)


def _chunks(raw: Any, chunk_bytes: int) -> Iterator[bytes]:
    while True:
        try:
            chunk = raw.read(chunk_bytes)
        except Exception as exc:
            raise translate_error(exc, "stream") from exc
        if not chunk:
            return
        yield bytes(chunk)


_lock = threading.Lock()
_clients: dict[str, StorageClient] = {}
_chdb_path: str | None = None
_store_lock: StoreLock | None = None


def store_lock() -> StoreLock | None:
    """This process's hold of its embedded store (to announce its API URL), or None."""
    return _store_lock


def open_chdb_path() -> str | None:
    """The data path of this process's embedded engine, or None when none is open."""
    return _chdb_path


def _chdb_dir(dsn: str) -> str:
    path = urlsplit(dsn).path
    if not path.startswith("/"):
        raise StorageConfigError(
            f"the chDB DSN needs an absolute path: chdb:///abs/path, got {dsn}"
        )
    return str(Path(path).resolve())


def _client_key(settings: StorageSettings) -> str:
    return f"chdb://{_chdb_dir(settings.dsn)}" if settings.embedded else settings.dsn


def _open(settings: StorageSettings) -> Client:
    if settings.embedded:
        global _chdb_path, _store_lock
        path = _chdb_dir(settings.dsn)
        if _chdb_path is not None and _chdb_path != path:
            raise StorageConfigError(
                f"chDB allows one data path per process: {_chdb_path} is open, {path} was requested"
            )
        lock = StoreLock.acquire(Path(path))  # raises StoreInUse when another process holds it
        try:
            client = clickhouse_connect.get_client(dsn=f"chdb://{path}")
        except Exception as exc:
            lock.release()
            if "initializing EmbeddedServer" in str(exc):  # held by a process without the lock
                raise store_in_use(Path(path), {}) from exc
            raise StorageConfigError(f"cannot open the chDB engine at {path}: {exc}") from exc
        _chdb_path, _store_lock = path, lock
        return client
    return clickhouse_connect.get_client(
        dsn=settings.dsn,
        connect_timeout=min(10.0, settings.insert_timeout_s),
        send_receive_timeout=settings.insert_timeout_s,
        # Several threads share the client: sessions would forbid concurrent queries.
        autogenerate_session_id=False,
    )


def get_client(settings: StorageSettings) -> StorageClient:
    """The process's client for ``settings.dsn`` (created on first use)."""
    key = _client_key(settings)
    with _lock:
        existing = _clients.get(key)
        if existing is not None:
            return existing
        try:
            raw = _open(settings)
        except StorageError:
            raise
        except Exception as exc:
            raise translate_error(exc, f"connect to {redact_dsn(settings.dsn)}") from exc
        client = StorageClient(raw, redact_dsn(key))
        _clients[key] = client
        logger.info("ClickHouse client opened for %s", redact_dsn(settings.dsn))
        return client


def close_all_clients() -> None:
    """Close every client of this process (shutdown, tests)."""
    global _chdb_path, _store_lock
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()
        _chdb_path = None
        if _store_lock is not None:
            _store_lock.release()
            _store_lock = None
