"""Cluster mode: every statement of every migration, rendered for one server and for a cluster.

ClickHouse itself parses each statement (``SELECT formatQuery({sql:String})`` on chDB, the
statement passed as a server-side parameter): a statement it refuses fails here, not at a
customer's ``migrate``. The structure of the cluster schema (local replicated tables behind
Distributed ones, the cascade on the local tables, TTLs, deduplication) is checked on the
formatted text. The single-server path is checked to be the plain migration text, and it runs
for real in test_storage_migrations.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from schemas.migrations import Migration, load_migrations
from stream_app.storage.client import StorageClient
from stream_app.storage.engines import TableEngines
from stream_app.storage.errors import MigrationError
from stream_app.storage.migrate import Migrator
from stream_app.storage.settings import StorageSettings
from stream_app.storage.tables import (
    INGEST_TABLE,
    POOL_RESOLUTION_TABLES,
    RESOLUTION_TABLES,
    SHARDING_KEYS,
    TTL_RULES,
)

CLUSTER = "pwm"
DB = "proxywhirl"  # as formatQuery prints it
CASCADE = {
    *RESOLUTION_TABLES.values(),
    *POOL_RESOLUTION_TABLES.values(),
    "proxy_1m",
    "proxy_1d",
    "source_offsets",
}


class RecordingClient:
    """Stands in for a cluster nobody can start here: records commands, answers system.tables."""

    def __init__(
        self, tables: list[tuple[str, str]] | None = None, applied: list[Migration] | None = None
    ) -> None:
        self.commands: list[str] = []
        self.command_settings: list[Any] = []
        self.tables = tables or []
        self.applied = applied

    def command(self, sql: str, parameters: Any = None, settings: Any = None) -> None:
        self.commands.append(sql)
        self.command_settings.append(settings)

    def rows(self, sql: str, parameters: Any = None, **kwargs: Any) -> list[tuple[Any, ...]]:
        if "engine_full" in sql:
            return list(self.tables)
        if self.applied is not None and "system.tables" in sql:
            return [(1,)]  # the status table exists
        if self.applied is not None and "system.columns" in sql:
            return [(f"Enum8({', '.join(DIRECTIONS)})",)]  # with the run marks
        if self.applied is not None and "argMax" in sql:
            return [(m.version, m.name, "up", m.checksum, 1) for m in self.applied]
        return [(0,)]

    def named_rows(self, sql: str, parameters: Any = None, **kwargs: Any) -> list[dict[str, Any]]:
        if self.applied is not None and "'running'" in sql:
            return []  # no run in progress
        if self.applied is not None and "argMax" in sql:
            return [
                {
                    "version": m.version,
                    "last_name": m.name,
                    "last_direction": "up",
                    "last_checksum": m.checksum,
                    "applied_at_ms": 1,
                }
                for m in self.applied
            ]
        return []


DIRECTIONS = ("'up' = 1", "'down' = 2", "'running' = 3", "'failed' = 4")


def cluster_settings(**overrides: Any) -> StorageSettings:
    return StorageSettings(dsn="http://ch-1:8123", cluster=CLUSTER, **overrides)


def migrator(settings: StorageSettings, client: Any = None) -> Migrator:
    return Migrator(client or RecordingClient(), settings)  # type: ignore[arg-type]


def every_statement(m: Migrator) -> Iterator[tuple[str, str]]:
    yield "bookkeeping", m.bookkeeping_statements()[0]
    yield "bookkeeping", m.bookkeeping_statements()[1]
    for rule in TTL_RULES:
        yield "ttl", m.ttl_statement(rule, 3)
    for migration in m.migrations:
        for direction in ("up", "down"):
            for statement in m.render(migration, direction):
                yield f"{migration.label} {direction}", statement


def formatted(client: StorageClient, statement: str) -> str:
    """ClickHouse's own rendering of ``statement``; raises if its parser refuses it."""
    return str(client.rows("SELECT formatQuery({sql:String})", {"sql": statement})[0][0])


def one_line(sql: str) -> str:
    return re.sub(r"\s+", " ", sql)


@pytest.fixture(scope="module")
def cluster_schema(storage_client: StorageClient) -> dict[str, list[str]]:
    """Migration label + direction -> the cluster statements as ClickHouse formats them."""
    schema: dict[str, list[str]] = {}
    for step, statement in every_statement(migrator(cluster_settings())):
        schema.setdefault(step, []).append(one_line(formatted(storage_client, statement)))
    return schema


def test_every_statement_parses_on_both_layouts(storage_client: StorageClient) -> None:
    single = migrator(StorageSettings(dsn="http://ch-1:8123"))
    counts = {}
    for name, m in (("single", single), ("cluster", migrator(cluster_settings()))):
        statements = list(every_statement(m))
        for step, statement in statements:
            assert "${" not in statement, (step, statement)
            formatted(storage_client, statement)
        counts[name] = len(statements)
    assert counts["cluster"] > counts["single"]


def test_the_parser_check_can_fail(storage_client: StorageClient) -> None:
    with pytest.raises(Exception, match="Syntax error"):
        formatted(storage_client, "CREATE TABLE a.b ON CLUSTER `c` (x UInt8 ENGINE = Null")


def test_single_server_renders_the_migration_text_unchanged() -> None:
    m = migrator(StorageSettings(dsn="http://ch-1:8123"))
    values = m.render_values()
    for migration in load_migrations():
        for direction in ("up", "down"):
            rendered = m.render(migration, direction)
            assert rendered == migration.render(direction, values)
            text = "\n".join(rendered)
            assert not re.search(r"ON CLUSTER|Replicated|Distributed|_local\b", text)
    assert m.cluster_layout is None
    assert values["table_settings"] == "non_replicated_deduplication_window = 10000"
    assert "ENGINE = MergeTree" in m.bookkeeping_statements()[1]


def test_every_table_is_replicated_behind_a_distributed_table(
    cluster_schema: dict[str, list[str]],
) -> None:
    created: dict[str, str] = {}
    for step, statements in cluster_schema.items():
        if not step.endswith(" up"):
            continue
        for statement in statements:
            match = re.match(
                rf"CREATE TABLE IF NOT EXISTS {DB}\.(\w+) ON CLUSTER {CLUSTER}", statement
            )
            if match:
                created[match.group(1)] = statement
    layout = migrator(cluster_settings()).cluster_layout
    assert layout is not None
    assert layout.tables >= CASCADE | {INGEST_TABLE, "requests_raw", "alert_history"}
    for table in layout.tables:
        local = created[f"{table}_local"]
        distributed = created[table]
        engine = "`Null`" if table == INGEST_TABLE else "Replicated"
        assert f"ENGINE = {engine}" in local, local
        if table != INGEST_TABLE:
            assert "('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')" in local
            assert "replicated_deduplication_window = 10000" in local
            assert "replicated_deduplication_window_seconds = 604800" in local
            assert "non_replicated" not in local
        assert (
            f"AS {DB}.{table}_local ENGINE = Distributed('{CLUSTER}', 'proxywhirl'" in distributed
        )
        key = re.search(r"Distributed\('pwm', 'proxywhirl', '\w+'(?:, (.*))?\)$", distributed)
        assert key is not None, distributed
        if table in CASCADE:
            assert key.group(1) is None, "tables fed by views are read-only through Distributed"
        else:
            assert key.group(1) is not None, table
            assert key.group(1).startswith("cityHash64("), table
            assert "rand" not in key.group(1)
    assert layout.sharding_key(INGEST_TABLE) == "cityHash64(pool)"
    assert SHARDING_KEYS["requests_raw"] == "cityHash64(pool)"


def test_the_cascade_runs_on_the_local_tables_with_the_same_ttls(
    cluster_schema: dict[str, list[str]],
) -> None:
    views = [
        s
        for step, statements in cluster_schema.items()
        if step.endswith(" up")
        for s in statements
        if s.startswith("CREATE MATERIALIZED VIEW")
    ]
    flows = set()
    for view in views:
        match = re.search(rf"TO {DB}\.(\w+) .* FROM {DB}\.(\w+)", view)
        assert match is not None, view
        flows.add((match.group(2), match.group(1)))
    assert flows == {
        ("flush_ingest_local", "agg_10s_local"),
        ("flush_ingest_local", "proxy_1m_local"),
        ("proxy_1m_local", "proxy_1d_local"),
        ("flush_ingest_local", "source_offsets_local"),
        ("agg_10s_local", "agg_1m_local"),
        ("agg_1m_local", "agg_1h_local"),
        ("agg_1h_local", "agg_1d_local"),
        ("agg_1m_local", "agg_pool_1m_local"),
        ("agg_1h_local", "agg_pool_1h_local"),
        ("agg_1d_local", "agg_pool_1d_local"),
    }
    creates = " ".join(s for statements in cluster_schema.values() for s in statements)
    for rule in TTL_RULES:
        assert re.search(
            rf"CREATE TABLE IF NOT EXISTS {DB}\.{rule.table}_local .* TTL {re.escape(rule.column)}"
            rf" \+ toInterval{rule.unit.title()}\(",
            creates,
        ), rule.table
        ttl = [s for s in cluster_schema["ttl"] if f"{rule.table}_local" in s]
        assert len(ttl) == 1, rule.table
        assert "ON CLUSTER pwm (MODIFY TTL" in ttl[0], rule.table


def test_cluster_ddl_runs_on_every_host_and_drops_both_tables(
    cluster_schema: dict[str, list[str]],
) -> None:
    for step, statements in cluster_schema.items():
        for statement in statements:
            assert f"ON CLUSTER {CLUSTER}" in statement, (step, statement)
    down = cluster_schema["0001_window_tables down"]
    assert down.index(f"DROP TABLE IF EXISTS {DB}.agg_10s ON CLUSTER {CLUSTER} SYNC") + 1 == (
        down.index(f"DROP TABLE IF EXISTS {DB}.agg_10s_local ON CLUSTER {CLUSTER} SYNC")
    )
    status = cluster_schema["bookkeeping"][1]
    assert (
        "ENGINE = ReplicatedMergeTree('/clickhouse/tables/cluster-wide/{database}/{table}', "
        "'{shard}-{replica}')" in status
    )


def test_functions_are_created_on_every_host(cluster_schema: dict[str, list[str]]) -> None:
    functions = [s for s in cluster_schema["0003_latency_functions up"]]
    assert [s.split(" AS ")[0] for s in functions] == [
        f"CREATE OR REPLACE FUNCTION pwm_bucket_value ON CLUSTER {CLUSTER}",
        f"CREATE OR REPLACE FUNCTION pwm_quantile ON CLUSTER {CLUSTER}",
    ]


def _migration(
    up: str, down: str = "DROP TABLE IF EXISTS ${db}.t ${on_cluster} SYNC;"
) -> Migration:
    return Migration.parse("0099_extra.sql", f"-- +up\n{up}\n-- +down\n{down}\n")


def test_a_later_migration_is_rendered_and_a_bad_one_refused() -> None:
    settings = cluster_settings()
    extra = _migration(
        "CREATE TABLE IF NOT EXISTS ${db}.t ${on_cluster} (k String, n UInt8) "
        "ENGINE = ${merge_tree_engine} ORDER BY (k, n);\n"
        "ALTER TABLE ${db}.t ${on_cluster} ADD COLUMN IF NOT EXISTS m UInt8;\n"
        "ALTER TABLE ${db}.t ${on_cluster} MODIFY TTL now() + INTERVAL 1 DAY;"
    )
    m = Migrator(RecordingClient(), settings, migrations=[*load_migrations(), extra])  # type: ignore[arg-type]
    up = m.render(extra, "up")
    assert [s.split(" (")[0].split(" ENGINE")[0] for s in up] == [
        "CREATE TABLE IF NOT EXISTS `proxywhirl`.t_local ON CLUSTER `pwm`",
        "CREATE TABLE IF NOT EXISTS `proxywhirl`.t ON CLUSTER `pwm` AS `proxywhirl`.t_local",
        "ALTER TABLE `proxywhirl`.t_local ON CLUSTER `pwm` ADD COLUMN IF NOT EXISTS m UInt8",
        "ALTER TABLE `proxywhirl`.t ON CLUSTER `pwm` ADD COLUMN IF NOT EXISTS m UInt8",
        "ALTER TABLE `proxywhirl`.t_local ON CLUSTER `pwm` MODIFY TTL now() + INTERVAL 1 DAY",
    ]
    assert up[1].endswith("Distributed('pwm', 'proxywhirl', 't_local', cityHash64(k, n))")

    for bad, message in (
        ("INSERT INTO ${db}.t ${on_cluster} VALUES (1);", "cannot render for cluster"),
        ("CREATE TABLE IF NOT EXISTS ${db}.u (x UInt8) ENGINE = Memory;", "lacks"),
        ("ALTER TABLE ${db}.nowhere ${on_cluster} ADD COLUMN y UInt8;", "not created by any"),
    ):
        broken = _migration(bad)
        m = Migrator(RecordingClient(), settings, migrations=[broken])  # type: ignore[arg-type]
        with pytest.raises(MigrationError, match=message):
            m.render(broken, "up")


def test_ttls_are_read_and_altered_on_the_local_tables() -> None:
    client = RecordingClient(
        tables=[
            (
                "agg_10s_local",
                "ReplicatedAggregatingMergeTree(...) TTL window_start + toIntervalDay(14)",
            ),
            ("agg_10s", "Distributed('pwm', 'proxywhirl', 'agg_10s_local')"),
            (
                "requests_raw_local",
                "ReplicatedMergeTree(...) TTL toDateTime(ts) + toIntervalHour(48)",
            ),
        ]
    )
    m = migrator(cluster_settings(ttl_10s_days=7), client)
    assert m.current_ttls() == {"agg_10s": 14, "requests_raw": 48}
    assert m.apply_ttls() == ["agg_10s"]
    assert client.commands == [
        "ALTER TABLE `proxywhirl`.agg_10s_local ON CLUSTER `pwm` "
        "MODIFY TTL window_start + INTERVAL 7 DAY"
    ]


def test_cluster_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="needs a ClickHouse server"):
        StorageSettings(dsn="chdb:///tmp/x", cluster=CLUSTER)
    for bad in ({"cluster": "pwm`; DROP"}, {"replica_path": "/a/'b"}, {"replica_name": "x\\y"}):
        with pytest.raises(ValueError, match="should match pattern"):
            StorageSettings.model_validate({"dsn": "http://ch-1:8123", **bad})
    for path in ("/clickhouse/tables/{database}/{table}", "/clickhouse/tables/{shard}/fixed"):
        with pytest.raises(ValueError, match="replica_path must hold"):
            cluster_settings(replica_path=path)
    with pytest.raises(ValueError, match="quotes"):
        TableEngines.replicated(CLUSTER, zookeeper_path="/a'b")
    with pytest.raises(ValueError, match="identifier"):
        TableEngines.replicated("fleet`; DROP")
    engines = TableEngines.for_settings(cluster_settings(replicated_dedup_window_s=3600))
    assert engines.table_settings(500) == (
        "replicated_deduplication_window = 500, replicated_deduplication_window_seconds = 3600"
    )
    assert TableEngines.for_settings(StorageSettings(dsn="http://h:8123")) == (
        TableEngines.single_server()
    )


def test_a_cluster_migrate_with_nothing_to_do_waits_for_no_host() -> None:
    """Every worker start runs ``migrate``: with the schema there it creates nothing, and the
    server-wide functions it re-applies are queued ON CLUSTER without waiting for every host."""
    client = RecordingClient(applied=load_migrations())
    m = Migrator(client, cluster_settings())  # type: ignore[arg-type]
    assert m.migrate() == []
    reapplied = [m for m in load_migrations() if m.reapply]
    assert reapplied
    assert client.commands == [s for r in reapplied for s in m.render(r, "up")]
    assert client.command_settings == [{"distributed_ddl_task_timeout": 0}] * len(client.commands)

    single = RecordingClient(applied=load_migrations())
    Migrator(single, StorageSettings(dsn="http://ch-1:8123")).migrate()  # type: ignore[arg-type]
    assert single.command_settings == [None] * len(single.commands)
    assert all("ON CLUSTER" not in c for c in single.commands)


def test_every_table_setting_is_one_the_engine_knows(
    cluster_schema: dict[str, list[str]], storage_client: StorageClient
) -> None:
    """formatQuery does not check setting names; the engine's list of MergeTree settings does."""
    names = set()
    for statements in cluster_schema.values():
        for statement in statements:
            clause = re.search(r" SETTINGS (.*)$", statement)
            if statement.startswith("CREATE TABLE") and clause:
                names |= {part.split("=")[0].strip() for part in clause.group(1).split(",")}
    assert {"replicated_deduplication_window", "replicated_deduplication_window_seconds"} <= names
    known = storage_client.rows(
        "SELECT name FROM system.merge_tree_settings WHERE has({names:Array(String)}, name)",
        {"names": sorted(names)},
    )
    assert {name for (name,) in known} == names
