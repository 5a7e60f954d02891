"""The migration status table, ``<db>.schema_migrations``, and the records read from it.

Every step :class:`~stream_app.storage.migrate.Migrator` takes is a row (seq, version, name,
direction, checksum, applied_at); the state of a version is its latest ``up``/``down`` row.

One run at a time: before its statements run, a step is recorded as ``running`` in the status
table; the ``up``/``down`` row that records it done (or a ``failed`` row when a statement
fails) ends it. ``migrate`` and ``rollback`` refuse to start while any version is ``running``
(:meth:`StatusTable.refuse_concurrent_run`: :class:`MigrationError` naming the version and
since when). A ``running`` row left by a run that crashed is cleared with ``take_over=True``
(``proxywhirl-metrics migrate --take-over``), once you know no other run is going on: it is
never taken over by time alone, since a migration may legitimately run for long. The check and
the mark are two statements (ClickHouse has no transactions), so two runs started within
milliseconds of each other can still both pass it; start-up runs of several workers are spread
by their rebalances.

:class:`StatusTable` creates the table, teaches one created before runs were marked the
``running``/``failed`` directions, reads the applied and running steps, refuses a concurrent
run and appends rows. SQL here is built from trusted names only (the validated database name,
:data:`STATUS_TABLE`); values are server-side parameters.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from schemas.migrations import Direction, Migration
from stream_app.storage.client import StorageClient
from stream_app.storage.engines import TableEngines, quote_identifier
from stream_app.storage.errors import MigrationError, StorageError
from stream_app.storage.tables import STATUS_TABLE

__all__ = ["AppliedStep", "MigrationStatus", "RunMark", "RunningStep", "StatusTable"]

logger = logging.getLogger(__name__)

RunMark = Literal["running", "failed"]
"""The rows a run writes around a step besides its ``up``/``down`` direction."""


@dataclass(frozen=True, slots=True)
class AppliedStep:
    """The latest recorded step of one version."""

    version: int
    name: str
    direction: Direction
    checksum: str
    applied_at_ms: int


@dataclass(frozen=True, slots=True)
class RunningStep:
    """A version whose latest row says a run is applying or rolling it back."""

    version: int
    name: str
    since_ms: int

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"

    @property
    def since(self) -> str:
        return datetime.fromtimestamp(self.since_ms / 1000, UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    """One known migration and whether the database has it."""

    version: int
    name: str
    checksum: str
    applied: bool
    applied_checksum: str | None
    applied_at_ms: int | None


_DIRECTIONS = "Enum8('up' = 1, 'down' = 2, 'running' = 3, 'failed' = 4)"
"""``up``/``down``: a step done (the state of its version); ``running``: a run started it;
``failed``: that run stopped at a failing statement (the version's state is unchanged)."""


class StatusTable:
    """``<db>.schema_migrations`` of one database: creating it, reading it, appending to it."""

    def __init__(self, client: StorageClient, database: str, engines: TableEngines) -> None:
        self._client = client
        self._database = database
        self._db = quote_identifier(database)
        self._engines = engines

    def bookkeeping_statements(self) -> list[str]:
        """The statements creating the database and the migration status table."""
        on_cluster = self._engines.on_cluster
        return [
            f"CREATE DATABASE IF NOT EXISTS {self._db} {on_cluster}",
            f"""CREATE TABLE IF NOT EXISTS {self._db}.{STATUS_TABLE} {on_cluster}
                (
                    seq UInt64,
                    version UInt32,
                    name String,
                    direction {_DIRECTIONS},
                    checksum String,
                    applied_at DateTime64(3, 'UTC') DEFAULT now64(3, 'UTC')
                )
                ENGINE = {self._engines.status_engine}
                ORDER BY (version, seq)""",
        ]

    def ensure(self) -> None:
        """Create the database and the status table if missing (:class:`MigrationError` if not)."""
        try:
            if self.exists():
                self.ensure_run_marks()
                return  # nothing to create: no DDL (on a cluster, no queue entry per start)
            for statement in self.bookkeeping_statements():
                self._client.command(statement)
        except StorageError as exc:
            raise MigrationError(
                f"cannot create the migration status table {self._database}.{STATUS_TABLE}: {exc}"
            ) from exc

    def ensure_run_marks(self) -> None:
        """A status table created before runs were marked learns the ``running`` and
        ``failed`` directions (appending enum values changes metadata only)."""
        rows = self._client.rows(
            "SELECT type FROM system.columns WHERE database = {db:String} AND table = {t:String} "
            "AND name = 'direction'",
            parameters={"db": self._database, "t": STATUS_TABLE},
        )
        if rows and "'running'" not in str(rows[0][0]):
            self._client.command(
                f"ALTER TABLE {self._db}.{STATUS_TABLE} {self._engines.on_cluster} "
                f"MODIFY COLUMN direction {_DIRECTIONS}"
            )

    def exists(self) -> bool:
        rows = self._client.rows(
            "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}",
            parameters={"db": self._database, "t": STATUS_TABLE},
        )
        return bool(rows[0][0])

    def applied_steps(self) -> dict[int, AppliedStep]:
        """The latest recorded step of every version (empty for a new database)."""
        if not self.exists():
            return {}
        rows = self._client.named_rows(
            f"""SELECT version, argMax(name, seq) AS last_name,
                       toString(argMax(direction, seq)) AS last_direction,
                       argMax(checksum, seq) AS last_checksum,
                       argMax(toUnixTimestamp64Milli(applied_at), seq) AS applied_at_ms
                FROM {self._db}.{STATUS_TABLE}
                WHERE direction IN ('up', 'down')
                GROUP BY version
                ORDER BY version"""  # noqa: S608
        )
        return {
            int(r["version"]): AppliedStep(
                int(r["version"]),
                r["last_name"],
                r["last_direction"],
                r["last_checksum"],
                int(r["applied_at_ms"]),
            )
            for r in rows
        }

    def running_steps(self) -> list[RunningStep]:
        """Versions a run has started and not ended (another run, or one that crashed)."""
        if not self.exists():
            return []
        rows = self._client.named_rows(
            f"""SELECT version, argMax(name, seq) AS last_name,
                       toString(argMax(direction, seq)) AS last,
                       argMax(toUnixTimestamp64Milli(applied_at), seq) AS since_ms
                FROM {self._db}.{STATUS_TABLE}
                GROUP BY version
                HAVING last = 'running'
                ORDER BY version"""  # noqa: S608
        )
        return [RunningStep(int(r["version"]), r["last_name"], int(r["since_ms"])) for r in rows]

    def refuse_concurrent_run(self, migrations: Sequence[Migration], *, take_over: bool) -> None:
        """Raise :class:`MigrationError` while a version is ``running``; with ``take_over``,
        end the ``running`` marks of ``migrations`` with a ``failed`` row instead."""
        running = self.running_steps()
        if not running:
            return
        first = running[0]
        if not take_over:
            raise MigrationError(
                f"migration {first.label} of database {self._database} has been in "
                f"progress since {first.since} (UTC): another migrate is running, or one "
                "crashed. If none is running, run `proxywhirl-metrics migrate --take-over` "
                "(Migrator.migrate(take_over=True)) to clear it"
            )
        known = {m.version: m for m in migrations}
        for step in running:
            logger.warning(
                "taking over migration %s, in progress since %s (UTC)", step.label, step.since
            )
            migration = known.get(step.version)
            if migration is not None:
                self.record(migration, "failed")

    def record(self, migration: Migration, direction: Direction | RunMark) -> None:
        """Append a row for ``migration`` (the next ``seq``); storage errors propagate."""
        rows = self._client.rows(f"SELECT max(seq) FROM {self._db}.{STATUS_TABLE}")  # noqa: S608
        seq = int(rows[0][0]) + 1
        self._client.insert_columns(
            f"{self._db}.{STATUS_TABLE}",
            [[seq], [migration.version], [migration.name], [direction], [migration.checksum]],
            ["seq", "version", "name", "direction", "checksum"],
        )
