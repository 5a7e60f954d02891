"""Applying and rolling back the schema migrations (:mod:`schemas.migrations`).

:class:`Migrator` renders each migration with the configured database, engines, TTLs and the
latency functions, runs its statements one by one, and records every step in
``<db>.schema_migrations`` (:mod:`stream_app.storage.migrate_status`): the state of a version
is its latest row. ``migrate(target=None)`` applies what is missing up to ``target`` (default:
all) and then re-applies configured TTLs to existing tables (``ALTER ... MODIFY TTL``,
:mod:`stream_app.storage.migrate_ttls`); ``rollback(target)`` runs the backwards steps of
everything above ``target``. Both are idempotent: re-running them changes nothing. ``migrate``
also re-runs the forwards steps of applied ``reapply`` migrations (server-wide SQL functions
another database's rollback may have dropped). SQL here is built from trusted names only (the
validated database name, table names of :mod:`stream_app.storage.tables`); values are
server-side parameters.

With ``StorageSettings.cluster`` set, the same migrations are rendered for a cluster:
``ON CLUSTER`` DDL, replicated engines (:meth:`TableEngines.for_settings`) and Distributed
tables in front of them (:class:`~stream_app.storage.cluster.ClusterLayout`); the status table
is then replicated to every host. Without it the rendered SQL is the migration files' text with
the placeholders replaced, nothing else.

ClickHouse DDL is not transactional. A failing statement raises :class:`MigrationError` naming
the migration and the statement; the migration is not recorded, and because forwards steps are
idempotent, running ``migrate`` again after fixing the cause completes it.

One run at a time: each step is marked ``running`` in the status table before its statements
run, and ``migrate``/``rollback`` refuse to start while any version is ``running`` unless
``take_over=True`` (``proxywhirl-metrics migrate --take-over``) clears what a crashed run left
(:mod:`stream_app.storage.migrate_status` says how, and what it cannot guarantee).

The status table's rows (:class:`AppliedStep`, :class:`RunningStep`, :class:`MigrationStatus`)
live in :mod:`stream_app.storage.migrate_status` and are re-exported here.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

from schemas.migrations import Direction, Migration, MigrationFileError, load_migrations
from schemas.migrations.functions import bucket_value_lambda, latency_bucket_expr, quantile_lambda
from stream_app.storage.client import StorageClient
from stream_app.storage.cluster import ClusterLayout
from stream_app.storage.engines import TableEngines, quote_identifier
from stream_app.storage.errors import MigrationError, StorageError
from stream_app.storage.migrate_status import (
    AppliedStep,
    MigrationStatus,
    RunMark,
    RunningStep,
    StatusTable,
)
from stream_app.storage.migrate_ttls import TableTtls
from stream_app.storage.settings import StorageSettings
from stream_app.storage.tables import TtlRule

__all__ = ["AppliedStep", "MigrationStatus", "Migrator", "RunningStep"]

logger = logging.getLogger(__name__)


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
        self._status = StatusTable(client, settings.database, self._engines)
        self._ttls = TableTtls(client, settings, self._engines, self._layout)

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

    # -- bookkeeping (the status table: stream_app.storage.migrate_status) -----------------

    def bookkeeping_statements(self) -> list[str]:
        """The statements creating the database and the migration status table."""
        return self._status.bookkeeping_statements()

    def applied_steps(self) -> dict[int, AppliedStep]:
        """The latest recorded step of every version (empty for a new database)."""
        return self._status.applied_steps()

    def running_steps(self) -> list[RunningStep]:
        """Versions a run has started and not ended (another run, or one that crashed)."""
        return self._status.running_steps()

    def _record(self, migration: Migration, direction: Direction | RunMark) -> None:
        self._status.record(migration, direction)

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
        self._status.ensure()
        self._status.refuse_concurrent_run(self._migrations, take_over=take_over)
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
        if self._status.exists():
            self._status.ensure_run_marks()
            self._status.refuse_concurrent_run(self._migrations, take_over=take_over)
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

    # -- retention (stream_app.storage.migrate_ttls) ---------------------------------------

    def configured_ttls(self) -> dict[str, int]:
        """Table -> the TTL value (days or hours, as its rule says) configured in settings."""
        return self._ttls.configured_ttls()

    def current_ttls(self) -> dict[str, int]:
        """Table -> the TTL value in the database's table definition (existing tables only).

        Only the tables whose retention is configured (:data:`TTL_RULES`) are reported.
        """
        return self._ttls.current_ttls()

    def ttl_statement(self, rule: TtlRule, value: int) -> str:
        """``ALTER TABLE ... MODIFY TTL`` bringing ``rule.table`` to ``value`` days or hours."""
        return self._ttls.ttl_statement(rule, value)

    def apply_ttls(self) -> list[str]:
        """Bring existing tables to the configured TTLs; returns the tables altered."""
        return self._ttls.apply_ttls()
