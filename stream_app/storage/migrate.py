"""Applying and rolling back the schema migrations (:mod:`schemas.migrations`).

:class:`Migrator` renders each migration with the configured database, engines, TTLs and the
latency functions, runs its statements one by one, and records every step in
``<db>.schema_migrations`` (seq, version, name, direction, checksum, applied_at): the state of a
version is its latest row. ``migrate(target=None)`` applies what is missing up to ``target``
(default: all) and then re-applies configured TTLs to existing tables (``ALTER ... MODIFY TTL``);
``rollback(target)`` runs the backwards steps of everything above ``target``. Both are
idempotent: re-running them changes nothing. ``migrate`` also re-runs the forwards steps of
applied ``reapply`` migrations (server-wide SQL functions another database's rollback may have
dropped). SQL here is built from trusted names only (the validated database name, table names
of :mod:`stream_app.storage.tables`); values are server-side parameters.

With ``StorageSettings.cluster`` set, the same migrations are rendered for a cluster:
``ON CLUSTER`` DDL, replicated engines (:meth:`TableEngines.for_settings`) and Distributed
tables in front of them (:class:`~stream_app.storage.cluster.ClusterLayout`); the status table
is then replicated to every host. Without it the rendered SQL is the migration files' text with
the placeholders replaced, nothing else.

ClickHouse DDL is not transactional. A failing statement raises :class:`MigrationError` naming
the migration and the statement; the migration is not recorded, and because forwards steps are
idempotent, running ``migrate`` again after fixing the cause completes it.

One run at a time: before its statements run, a step is recorded as ``running`` in the status
table; the ``up``/``down`` row that records it done (or a ``failed`` row when a statement
fails) ends it. ``migrate`` and ``rollback`` refuse to start while any version is ``running``
(:class:`MigrationError` naming the version and since when). A ``running`` row left by a run
that crashed is cleared with ``take_over=True`` (``proxywhirl-metrics migrate --take-over``),
once you know no other run is going on: it is never taken over by time alone, since a
migration may legitimately run for long. The check and the mark are two statements
(ClickHouse has no transactions), so two runs started within milliseconds of each other can
still both pass it; start-up runs of several workers are spread by their rebalances.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from schemas.migrations import Direction, Migration, MigrationFileError, load_migrations
from schemas.migrations.functions import bucket_value_lambda, latency_bucket_expr, quantile_lambda
from stream_app.storage.client import StorageClient
from stream_app.storage.cluster import ClusterLayout
from stream_app.storage.engines import TableEngines, quote_identifier
from stream_app.storage.errors import MigrationError, StorageError
from stream_app.storage.settings import StorageSettings
from stream_app.storage.tables import STATUS_TABLE, TTL_RULES, TtlRule

__all__ = ["AppliedStep", "MigrationStatus", "Migrator", "RunningStep"]

logger = logging.getLogger(__name__)

_RunMark = Literal["running", "failed"]
_TTL_VALUE = re.compile(r"\bTTL\b.*?toInterval(Day|Hour)\((\d+)\)")


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


_DIRECTIONS = "Enum8('up' = 1, 'down' = 2, 'running' = 3, 'failed' = 4)"
"""``up``/``down``: a step done (the state of its version); ``running``: a run started it;
``failed``: that run stopped at a failing statement (the version's state is unchanged)."""


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    """One known migration and whether the database has it."""

    version: int
    name: str
    checksum: str
    applied: bool
    applied_checksum: str | None
    applied_at_ms: int | None


class Migrator:
    """Brings one database to a schema version."""

    def __init__(
        self,
        client: StorageClient,
        settings: StorageSettings,
        *,
        migrations: Sequence[Migration] | None = None,
    ) -> None:
        self._client = client
        self._settings = settings
        self._engines = TableEngines.for_settings(settings)
        self._db = quote_identifier(settings.database)
        try:
            self._migrations = list(migrations) if migrations is not None else load_migrations()
        except MigrationFileError as exc:
            raise MigrationError(str(exc)) from exc
        self._layout = (
            ClusterLayout(settings.cluster, settings.database, self._migrations)
            if settings.cluster
            else None
        )
        # Re-applying server-wide objects at every start must not wait for every host of a
        # cluster (a host that is down would stall each worker's start for the DDL timeout):
        # the DDL is queued, and a host that is away runs it when it is back.
        self._unattended_ddl: dict[str, int] | None = (
            {"distributed_ddl_task_timeout": 0} if settings.cluster else None
        )

    @property
    def migrations(self) -> list[Migration]:
        return list(self._migrations)

    @property
    def latest_version(self) -> int:
        return self._migrations[-1].version if self._migrations else 0

    def render_values(self) -> dict[str, str]:
        """The placeholder values of every migration (trusted, validated configuration)."""
        s = self._settings
        engines = self._engines
        return {
            "db": self._db,
            "on_cluster": engines.on_cluster,
            "aggregating_engine": engines.aggregating_engine,
            "merge_tree_engine": engines.merge_tree_engine,
            "table_settings": engines.table_settings(s.dedup_window_blocks),
            "ttl_10s_days": str(s.ttl_10s_days),
            "ttl_1m_days": str(s.ttl_1m_days),
            "ttl_1h_days": str(s.ttl_1h_days),
            "ttl_1d_days": str(s.ttl_1d_days),
            "ttl_proxy_1m_days": str(s.ttl_proxy_1m_days),
            "ttl_proxy_1d_days": str(s.ttl_proxy_1d_days),
            "ttl_raw_hours": str(s.ttl_raw_hours),
            "bucket_value_lambda": bucket_value_lambda(),
            "quantile_lambda": quantile_lambda(),
            "latency_bucket_expr": latency_bucket_expr("latency_ms"),
        }

    @property
    def cluster_layout(self) -> ClusterLayout | None:
        """The local/Distributed table layout in cluster mode (None on a single server)."""
        return self._layout

    def render(self, migration: Migration, direction: Direction) -> list[str]:
        """The statements one step would run (for review, dry runs and the cluster variant)."""
        try:
            statements = migration.render(direction, self.render_values())
        except MigrationFileError as exc:
            raise MigrationError(str(exc)) from exc
        if self._layout is None:
            return statements
        return self._layout.render(migration.label, statements)

    def _stored_table(self, table: str) -> str:
        """Where ``table``'s rows and TTL live: the table itself, or its shards' local table."""
        if self._layout is None or table not in self._layout.tables:
            return table
        return self._layout.local(table)

    # -- bookkeeping -----------------------------------------------------------------------

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

    def _ensure_bookkeeping(self) -> None:
        try:
            if self._status_table_exists():
                self._ensure_run_marks()
                return  # nothing to create: no DDL (on a cluster, no queue entry per start)
            for statement in self.bookkeeping_statements():
                self._client.command(statement)
        except StorageError as exc:
            raise MigrationError(
                f"cannot create the migration status table {self._settings.database}."
                f"{STATUS_TABLE}: {exc}"
            ) from exc

    def _ensure_run_marks(self) -> None:
        """A status table created before runs were marked learns the ``running`` and
        ``failed`` directions (appending enum values changes metadata only)."""
        rows = self._client.rows(
            "SELECT type FROM system.columns WHERE database = {db:String} AND table = {t:String} "
            "AND name = 'direction'",
            parameters={"db": self._settings.database, "t": STATUS_TABLE},
        )
        if rows and "'running'" not in str(rows[0][0]):
            self._client.command(
                f"ALTER TABLE {self._db}.{STATUS_TABLE} {self._engines.on_cluster} "
                f"MODIFY COLUMN direction {_DIRECTIONS}"
            )

    def _status_table_exists(self) -> bool:
        rows = self._client.rows(
            "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}",
            parameters={"db": self._settings.database, "t": STATUS_TABLE},
        )
        return bool(rows[0][0])

    def applied_steps(self) -> dict[int, AppliedStep]:
        """The latest recorded step of every version (empty for a new database)."""
        if not self._status_table_exists():
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
        if not self._status_table_exists():
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

    def _refuse_concurrent_run(self, take_over: bool) -> None:
        running = self.running_steps()
        if not running:
            return
        first = running[0]
        if not take_over:
            raise MigrationError(
                f"migration {first.label} of database {self._settings.database} has been in "
                f"progress since {first.since} (UTC): another migrate is running, or one "
                "crashed. If none is running, run `proxywhirl-metrics migrate --take-over` "
                "(Migrator.migrate(take_over=True)) to clear it"
            )
        known = {m.version: m for m in self._migrations}
        for step in running:
            logger.warning(
                "taking over migration %s, in progress since %s (UTC)", step.label, step.since
            )
            migration = known.get(step.version)
            if migration is not None:
                self._record(migration, "failed")

    def status(self) -> list[MigrationStatus]:
        """Every known migration with its state in the database."""
        steps = self.applied_steps()
        result = []
        for m in self._migrations:
            step = steps.get(m.version)
            applied = step is not None and step.direction == "up"
            result.append(
                MigrationStatus(
                    version=m.version,
                    name=m.name,
                    checksum=m.checksum,
                    applied=applied,
                    applied_checksum=step.checksum if step and applied else None,
                    applied_at_ms=step.applied_at_ms if step and applied else None,
                )
            )
        return result

    def current_version(self) -> int:
        """The highest applied version (0 for an empty database)."""
        applied = [v for v, step in self.applied_steps().items() if step.direction == "up"]
        return max(applied, default=0)

    def _record(self, migration: Migration, direction: Direction | _RunMark) -> None:
        rows = self._client.rows(f"SELECT max(seq) FROM {self._db}.{STATUS_TABLE}")  # noqa: S608
        seq = int(rows[0][0]) + 1
        self._client.insert_columns(
            f"{self._db}.{STATUS_TABLE}",
            [[seq], [migration.version], [migration.name], [direction], [migration.checksum]],
            ["seq", "version", "name", "direction", "checksum"],
        )

    def _check_known(self, steps: dict[int, AppliedStep]) -> None:
        known = {m.version: m for m in self._migrations}
        for version, step in sorted(steps.items()):
            if step.direction != "up":
                continue
            migration = known.get(version)
            if migration is None:
                raise MigrationError(
                    f"database {self._settings.database} has migration "
                    f"{version:04d}_{step.name} applied, which this code does not know "
                    f"(it knows up to version {self.latest_version}): run newer code"
                )
            if migration.checksum != step.checksum:
                raise MigrationError(
                    f"migration {migration.label} was applied with checksum {step.checksum} "
                    f"but its file now has {migration.checksum}: never edit an applied "
                    "migration, add a new one"
                )

    def _run(self, migration: Migration, direction: Direction) -> None:
        statements = self.render(migration, direction)
        try:
            self._record(migration, "running")
        except StorageError as exc:
            raise MigrationError(
                f"migration {migration.label} ({direction}) cannot be marked running: {exc}"
            ) from exc
        for index, statement in enumerate(statements, start=1):
            try:
                self._client.command(statement)
            except StorageError as exc:
                first_line = statement.splitlines()[0]
                with contextlib.suppress(StorageError):  # else cleared with take_over
                    self._record(migration, "failed")
                raise MigrationError(
                    f"migration {migration.label} ({direction}) failed at statement "
                    f"{index}/{len(statements)} [{first_line}]: {exc}"
                ) from exc
        try:
            self._record(migration, direction)
        except StorageError as exc:
            raise MigrationError(
                f"migration {migration.label} ({direction}) ran but could not be recorded: {exc}"
            ) from exc
        logger.info(
            "migration %s %s applied to database %s",
            migration.label,
            direction,
            self._settings.database,
        )

    # -- public steps ----------------------------------------------------------------------

    def migrate(self, target: int | None = None, *, take_over: bool = False) -> list[Migration]:
        """Apply every missing migration up to ``target`` (default: the latest), then TTLs.

        Returns the migrations applied (empty when the database was already there). Never rolls
        back: a database beyond ``target`` is left as it is. Refuses to start while another run
        is in progress; ``take_over`` clears what a crashed run left (see the module docstring).
        """
        target = self.latest_version if target is None else target
        if not 0 <= target <= self.latest_version:
            raise MigrationError(f"unknown target version {target} (latest {self.latest_version})")
        self._ensure_bookkeeping()
        self._refuse_concurrent_run(take_over)
        steps = self.applied_steps()
        self._check_known(steps)
        applied = []
        for migration in self._migrations:
            if migration.version > target:
                break
            step = steps.get(migration.version)
            if step is not None and step.direction == "up":
                continue
            self._run(migration, "up")
            applied.append(migration)
        self._reapply(steps, applied)
        self.apply_ttls()
        return applied

    def _reapply(self, steps: dict[int, AppliedStep], just_applied: list[Migration]) -> None:
        """Re-run the forwards steps of applied ``reapply`` migrations (server-wide objects)."""
        fresh = {m.version for m in just_applied}
        for migration in self._migrations:
            step = steps.get(migration.version)
            if not migration.reapply or migration.version in fresh:
                continue
            if step is None or step.direction != "up":
                continue
            for statement in self.render(migration, "up"):
                try:
                    self._client.command(statement, settings=self._unattended_ddl)
                except StorageError as exc:
                    raise MigrationError(
                        f"re-applying migration {migration.label} failed: {exc}"
                    ) from exc

    def rollback(self, target: int, *, take_over: bool = False) -> list[Migration]:
        """Run the backwards steps of every applied migration above ``target`` (newest first);
        refuses to start while another run is in progress (``take_over``: as :meth:`migrate`)."""
        if not 0 <= target <= self.latest_version:
            raise MigrationError(f"unknown target version {target} (latest {self.latest_version})")
        if self._status_table_exists():
            self._ensure_run_marks()
            self._refuse_concurrent_run(take_over)
        steps = self.applied_steps()
        self._check_known(steps)
        rolled_back = []
        for migration in reversed(self._migrations):
            if migration.version <= target:
                break
            step = steps.get(migration.version)
            if step is None or step.direction != "up":
                continue
            self._run(migration, "down")
            rolled_back.append(migration)
        return rolled_back

    def configured_ttls(self) -> dict[str, int]:
        """Table -> the TTL value (days or hours, as its rule says) configured in settings."""
        return {rule.table: int(getattr(self._settings, rule.setting)) for rule in TTL_RULES}

    def current_ttls(self) -> dict[str, int]:
        """Table -> the TTL value in the database's table definition (existing tables only).

        Only the tables whose retention is configured (:data:`TTL_RULES`) are reported.
        """
        governed = {self._stored_table(rule.table): rule.table for rule in TTL_RULES}
        rows = self._client.rows(
            "SELECT name, engine_full FROM system.tables WHERE database = {db:String}",
            parameters={"db": self._settings.database},
        )
        ttls = {}
        for name, engine_full in rows:
            match = _TTL_VALUE.search(engine_full)
            if match is not None and name in governed:
                ttls[governed[name]] = int(match.group(2))
        return ttls

    def ttl_statement(self, rule: TtlRule, value: int) -> str:
        """``ALTER TABLE ... MODIFY TTL`` bringing ``rule.table`` to ``value`` days or hours."""
        return (
            f"ALTER TABLE {self._db}.{self._stored_table(rule.table)} "
            f"{self._engines.on_cluster} "
            f"MODIFY TTL {rule.column} + INTERVAL {int(value)} {rule.unit}"
        )

    def apply_ttls(self) -> list[str]:
        """Bring existing tables to the configured TTLs; returns the tables altered."""
        try:
            current = self.current_ttls()
            altered = []
            for rule in TTL_RULES:
                have = current.get(rule.table)
                want = int(getattr(self._settings, rule.setting))
                if have is None or have == want:
                    continue
                self._client.command(self.ttl_statement(rule, want))
                logger.info("TTL of %s changed from %d to %d", rule.table, have, want)
                altered.append(rule.table)
            return altered
        except StorageError as exc:
            raise MigrationError(f"applying the configured TTLs failed: {exc}") from exc
