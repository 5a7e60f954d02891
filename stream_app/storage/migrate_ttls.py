"""Bringing existing tables to the configured retention (``ALTER TABLE ... MODIFY TTL``).

Migrations create tables with the TTLs configured when they ran; a changed setting reaches
tables that already exist through :class:`TableTtls`, which
:meth:`~stream_app.storage.migrate.Migrator.migrate` runs after every migration. Only the tables
of :data:`~stream_app.storage.tables.TTL_RULES` are governed. In cluster mode a table's rows and
TTL live in its shards' local table (:class:`~stream_app.storage.cluster.ClusterLayout`), and
the ``ALTER`` runs ``ON CLUSTER``. SQL here is built from trusted names only (the validated
database name, table names of :mod:`stream_app.storage.tables`); values are server-side
parameters or validated integers.
"""

from __future__ import annotations

import logging
import re

from stream_app.storage.client import StorageClient
from stream_app.storage.cluster import ClusterLayout
from stream_app.storage.engines import TableEngines, quote_identifier
from stream_app.storage.errors import MigrationError, StorageError
from stream_app.storage.settings import StorageSettings
from stream_app.storage.tables import TTL_RULES, TtlRule

__all__ = ["TableTtls"]

logger = logging.getLogger(__name__)

_TTL_VALUE = re.compile(r"\bTTL\b.*?toInterval(Day|Hour)\((\d+)\)")


class TableTtls:
    """The configured and the database's TTLs of the governed tables, and aligning them."""

    def __init__(
        self,
        client: StorageClient,
        settings: StorageSettings,
        engines: TableEngines,
        layout: ClusterLayout | None,
    ) -> None:
        self._client = client
        self._settings = settings
        self._engines = engines
        self._layout = layout
        self._db = quote_identifier(settings.database)

    def _stored_table(self, table: str) -> str:
        """Where ``table``'s rows and TTL live: the table itself, or its shards' local table."""
        if self._layout is None or table not in self._layout.tables:
            return table
        return self._layout.local(table)

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
