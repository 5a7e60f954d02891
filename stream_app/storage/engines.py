"""Table engines of the storage schema, in one place, so a cluster variant can be rendered.

The migrations name engines through placeholders (``${aggregating_engine}``, ``${on_cluster}``
...; see :mod:`schemas.migrations`). :meth:`TableEngines.single_server` is what the embedded
engine and a single ClickHouse server run. :meth:`TableEngines.replicated` renders the same
schema for a cluster: ``ON CLUSTER`` DDL, ``Replicated*MergeTree`` engines keyed by the
``{shard}``/``{replica}`` macros, and ``replicated_deduplication_window`` instead of the
non-replicated one. Running the cluster variant also needs a ``Distributed`` table in front of
``flush_ingest`` and of the read tables; that is left for the deployment that needs it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["TableEngines", "quote_identifier"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def quote_identifier(name: str) -> str:
    """Backquote a validated identifier (database, cluster); refuses anything else."""
    if _IDENTIFIER.match(name) is None:
        raise ValueError(f"not a plain identifier: {name!r}")
    return f"`{name}`"


@dataclass(frozen=True, slots=True)
class TableEngines:
    """Engine clauses substituted into the migrations."""

    aggregating_engine: str
    merge_tree_engine: str
    on_cluster: str
    dedup_window_setting: str

    @classmethod
    def single_server(cls) -> TableEngines:
        """Embedded chDB or one ClickHouse server."""
        return cls(
            aggregating_engine="AggregatingMergeTree",
            merge_tree_engine="MergeTree",
            on_cluster="",
            dedup_window_setting="non_replicated_deduplication_window",
        )

    @classmethod
    def replicated(
        cls,
        cluster: str,
        zookeeper_path: str = "/clickhouse/tables/{shard}/{database}/{table}",
        replica: str = "{replica}",
    ) -> TableEngines:
        """A replicated cluster (the path and replica use the server's macros)."""
        if "'" in zookeeper_path or "'" in replica or "\\" in zookeeper_path + replica:
            raise ValueError("zookeeper_path and replica must not contain quotes or backslashes")
        args = f"'{zookeeper_path}', '{replica}'"
        return cls(
            aggregating_engine=f"ReplicatedAggregatingMergeTree({args})",
            merge_tree_engine=f"ReplicatedMergeTree({args})",
            on_cluster=f"ON CLUSTER {quote_identifier(cluster)}",
            dedup_window_setting="replicated_deduplication_window",
        )

    def table_settings(self, dedup_window_blocks: int) -> str:
        """The SETTINGS list of every MergeTree table of the schema."""
        return f"{self.dedup_window_setting} = {int(dedup_window_blocks)}"
