"""Cluster mode: the migrations rendered for a sharded, replicated ClickHouse cluster.

With ``StorageSettings.cluster`` set, every table a migration creates becomes two tables, both
created ``ON CLUSTER`` on every host:

- ``<name>_local``, with the migration's own engine in its replicated variant
  (``ReplicatedAggregatingMergeTree(...)``: one replica set per shard, see
  :mod:`stream_app.storage.engines`);
- ``<name>``, a ``Distributed`` table over the ``_local`` tables of every shard.

Materialized views read and write the local tables: a view fires on the insert into the local
table of its own shard, so the rollup cascade (flush_ingest -> agg_10s -> agg_1m -> agg_1h ->
agg_1d, proxy_1m, source_offsets) runs on each shard exactly as on one server, with the same
TTLs. Everything else addresses the canonical names, i.e. the Distributed tables: the sink's
one insert per flush is split by :data:`stream_app.storage.tables.SHARDING_KEYS` and each
shard's part keeps the flush's deduplication token, and queries read the whole cluster. Nothing
outside the migrations needs to know which mode runs.

The rendering works on any migration file, including ones added later: it recognises the kinds
of statement a migration may contain (CREATE TABLE, CREATE [MATERIALIZED] VIEW, ALTER TABLE,
DROP TABLE / VIEW, CREATE / DROP FUNCTION) and refuses anything else, or a DDL statement that
lacks ``${on_cluster}``, with a :class:`~stream_app.storage.errors.MigrationError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from schemas.migrations import Migration
from stream_app.storage.engines import quote_identifier
from stream_app.storage.errors import MigrationError
from stream_app.storage.tables import LOCAL_SUFFIX, SHARDING_KEYS

__all__ = ["ClusterLayout"]

_TEMPLATE_DB = r"\$(?:\{db\}|db\b)"
_TEMPLATE_TABLE = re.compile(rf"^CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?{_TEMPLATE_DB}\.(\w+)")
_TEMPLATE_VIEW_TARGET = re.compile(
    rf"^CREATE\s+MATERIALIZED\s+VIEW\s.*?\sTO\s+{_TEMPLATE_DB}\.(\w+)", re.DOTALL
)
_COLUMN_ALTER = re.compile(r"\b(ADD|DROP|MODIFY|RENAME|COMMENT|CLEAR) COLUMN\b")
_ORDER_BY = re.compile(r"\bORDER BY (\((?:[^()]|\([^()]*\))*\)|\w+(?:\(\))?)")


class ClusterLayout:
    """Turns single-server-shaped statements into their cluster form (local + Distributed)."""

    def __init__(self, cluster: str, database: str, migrations: Sequence[Migration]) -> None:
        self.cluster = cluster
        self.database = database
        self._db = quote_identifier(database)
        self._on_cluster = f"ON CLUSTER {quote_identifier(cluster)}"
        tables: set[str] = set()
        fed: set[str] = set()
        for migration in migrations:
            for template in migration.up:
                if (created := _TEMPLATE_TABLE.match(template)) is not None:
                    tables.add(created.group(1))
                if (target := _TEMPLATE_VIEW_TARGET.match(template)) is not None:
                    fed.add(target.group(1))
        self.tables = frozenset(tables)
        """Tables the migrations create: each is a Distributed table over ``<name>_local``."""
        self.fed_tables = frozenset(fed & tables)
        """Tables filled by materialized views only: their Distributed tables are read-only."""
        names = "|".join(sorted(self.tables, key=len, reverse=True)) or r"(?!x)x"
        self._reference = re.compile(rf"{re.escape(self._db)}\.({names})\b")
        self._head = re.compile(
            rf"^(CREATE TABLE|CREATE MATERIALIZED VIEW|CREATE VIEW|ALTER TABLE|DROP TABLE|"
            rf"DROP VIEW)(?: IF (?:NOT )?EXISTS)? {re.escape(self._db)}\.(\w+)"
        )

    @staticmethod
    def local(table: str) -> str:
        """The name of ``table``'s replicated shard table."""
        return f"{table}{LOCAL_SUFFIX}"

    def sharding_key(self, table: str, create_statement: str = "") -> str | None:
        """How rows written through ``table``'s Distributed table choose their shard."""
        if table in SHARDING_KEYS:
            return SHARDING_KEYS[table]
        if table in self.fed_tables:
            return None
        order_by = _ORDER_BY.search(create_statement)
        if order_by is None:
            return None
        key = order_by.group(1)
        if key.startswith("(") and key.endswith(")"):
            key = key[1:-1].strip()
        return f"cityHash64({key})" if key and key != "tuple()" else None

    def render(self, label: str, statements: Sequence[str]) -> list[str]:
        """The cluster form of one migration step's rendered statements."""
        result: list[str] = []
        for statement in statements:
            result.extend(self._statement(label, statement))
        return result

    def _localise(self, statement: str) -> str:
        return self._reference.sub(lambda m: f"{self._db}.{self.local(m.group(1))}", statement)

    def _distributed(self, table: str, create_statement: str) -> str:
        args = [f"'{self.cluster}'", f"'{self.database}'", f"'{self.local(table)}'"]
        key = self.sharding_key(table, create_statement)
        if key is not None:
            args.append(key)
        return (
            f"CREATE TABLE IF NOT EXISTS {self._db}.{table} {self._on_cluster} "
            f"AS {self._db}.{self.local(table)} ENGINE = Distributed({', '.join(args)})"
        )

    def _statement(self, label: str, statement: str) -> Iterator[str]:
        if statement.startswith(("CREATE OR REPLACE FUNCTION", "CREATE FUNCTION", "DROP FUNCTION")):
            self._require_on_cluster(label, statement)
            yield statement
            return
        head = self._head.match(statement)
        if head is None:
            raise MigrationError(
                f"migration {label}: cannot render for cluster {self.cluster!r} a statement "
                f"that is not a CREATE/ALTER/DROP of a table, view or function in "
                f"{self._db}: [{statement.splitlines()[0]}]"
            )
        self._require_on_cluster(label, statement)
        kind, name = head.group(1), head.group(2)
        if kind in ("CREATE MATERIALIZED VIEW", "CREATE VIEW", "DROP VIEW"):
            yield self._localise(statement)
        elif name not in self.tables:
            raise MigrationError(
                f"migration {label}: table {name} is not created by any migration, so cluster "
                f"mode does not know its layout: [{statement.splitlines()[0]}]"
            )
        elif kind == "CREATE TABLE":
            local = self._localise(statement)
            yield local
            yield self._distributed(name, local)
        elif kind == "DROP TABLE":
            yield statement  # the Distributed table first, then the shards' tables
            yield self._localise(statement)
        else:  # ALTER TABLE: the shards' tables; column changes also on the Distributed one
            yield self._localise(statement)
            if _COLUMN_ALTER.search(statement):
                yield statement

    def _require_on_cluster(self, label: str, statement: str) -> None:
        if self._on_cluster not in statement:
            raise MigrationError(
                f"migration {label}: statement lacks ${{on_cluster}}, so it would run on one "
                f"host of cluster {self.cluster!r} only: [{statement.splitlines()[0]}]"
            )
