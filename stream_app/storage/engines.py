"""Table engines of the storage schema, in one place, so a cluster variant can be rendered.

The migrations name engines through placeholders (``${aggregating_engine}``, ``${on_cluster}``
...; see :mod:`schemas.migrations`). :meth:`TableEngines.single_server` is what the embedded
engine and a single ClickHouse server run. :meth:`TableEngines.replicated` renders the same
schema for a cluster: ``ON CLUSTER`` DDL, ``Replicated*MergeTree`` engines keyed by the
``{shard}``/``{replica}`` macros, and ``replicated_deduplication_window`` (with its age limit)
instead of the non-replicated one. :mod:`stream_app.storage.cluster` then puts ``Distributed``
tables in front of the replicated ones. :meth:`TableEngines.for_settings` picks the variant
``StorageSettings.cluster`` asks for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stream_app.storage.settings import StorageSettings

__all__ = ["CLUSTER_WIDE_PATH", "TableEngines", "quote_identifier"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

CLUSTER_WIDE_PATH = "/clickhouse/tables/cluster-wide/{database}/{table}"
"""Keeper path of the migration status table, which every host of a cluster replicates."""


def quote_identifier(name: str) -> str:
    """Backquote a validated identifier (database, cluster); refuses anything else."""
    if _IDENTIFIER.match(name) is None:
        raise ValueError(f"not a plain identifier: {name!r}")
    return f"`{name}`"


def _literal(value: str, what: str) -> str:
    if "'" in value or "\\" in value:
        raise ValueError(f"{what} must not contain quotes or backslashes")
    return f"'{value}'"


@dataclass(frozen=True, slots=True)
class TableEngines:
    """Engine clauses substituted into the migrations."""

    aggregating_engine: str
    merge_tree_engine: str
    on_cluster: str
    dedup_window_setting: str
    status_engine: str
    """Engine of ``schema_migrations`` (cluster: one replica on every host, not sharded)."""
    cluster: str = ""
    dedup_window_s: int | None = None
    """``replicated_deduplication_window_seconds`` (replicated tables only)."""

    @classmethod
    def single_server(cls) -> TableEngines:
        """Embedded chDB or one ClickHouse server."""
        return cls(
            aggregating_engine="AggregatingMergeTree",
            merge_tree_engine="MergeTree",
            on_cluster="",
            dedup_window_setting="non_replicated_deduplication_window",
            status_engine="MergeTree",
        )

    @classmethod
    def replicated(
        cls,
        cluster: str,
        zookeeper_path: str = "/clickhouse/tables/{shard}/{database}/{table}",
        replica: str = "{replica}",
        dedup_window_s: int = 7 * 86_400,
    ) -> TableEngines:
        """A replicated cluster (the path and replica use the server's macros)."""
        args = f"{_literal(zookeeper_path, 'zookeeper_path')}, {_literal(replica, 'replica')}"
        # The status table lives on every host: one replica set over the whole cluster, so
        # each replica name must be unique cluster-wide, whatever the {replica} macro holds.
        status_args = f"'{CLUSTER_WIDE_PATH}', {_literal('{shard}-' + replica, 'replica')}"
        return cls(
            aggregating_engine=f"ReplicatedAggregatingMergeTree({args})",
            merge_tree_engine=f"ReplicatedMergeTree({args})",
            on_cluster=f"ON CLUSTER {quote_identifier(cluster)}",
            dedup_window_setting="replicated_deduplication_window",
            status_engine=f"ReplicatedMergeTree({status_args})",
            cluster=cluster,
            dedup_window_s=int(dedup_window_s),
        )

    @classmethod
    def for_settings(cls, settings: StorageSettings) -> TableEngines:
        """Single server, or the replicated variant when ``settings.cluster`` is set."""
        if not settings.cluster:
            return cls.single_server()
        return cls.replicated(
            settings.cluster,
            settings.replica_path,
            settings.replica_name,
            settings.replicated_dedup_window_s,
        )

    def table_settings(self, dedup_window_blocks: int) -> str:
        """The SETTINGS list of every MergeTree table of the schema."""
        window = f"{self.dedup_window_setting} = {int(dedup_window_blocks)}"
        if self.dedup_window_s is None:
            return window
        # Keeper forgets block hashes after this age (3600 s by default): a flush rebuilt
        # from Kafka later than that would be stored twice.
        return f"{window}, replicated_deduplication_window_seconds = {self.dedup_window_s}"
