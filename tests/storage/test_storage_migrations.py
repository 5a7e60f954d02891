"""Migrations on real chDB: up / down / up, the status table, idempotency, failures, TTLs."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from storage_store import Store

from schemas.migrations import Migration, MigrationFileError, load_migrations
from stream_app.storage.client import StorageClient
from stream_app.storage.engines import quote_identifier
from stream_app.storage.errors import MigrationError
from stream_app.storage.migrate import Migrator
from stream_app.storage.settings import StorageSettings
from stream_app.storage.tables import POOL_RESOLUTION_TABLES, RESOLUTION_TABLES

CORE_TABLES = {
    "flush_ingest",
    "agg_10s",
    "agg_1m",
    "agg_1h",
    "agg_1d",
    "proxy_1m",
    "proxy_1d",
    "source_offsets",
    "requests_raw",
}
CASCADE_TABLES = (*RESOLUTION_TABLES.values(), *POOL_RESOLUTION_TABLES.values())
CORE_VIEWS = {
    "agg_10s_mv",
    "agg_1m_mv",
    "agg_1h_mv",
    "agg_1d_mv",
    "proxy_1m_mv",
    "proxy_1d_mv",
    "source_offsets_mv",
}


def tables(client: StorageClient, database: str) -> set[str]:
    rows = client.rows(
        "SELECT name FROM system.tables WHERE database = {db:String}", {"db": database}
    )
    return {name for (name,) in rows}


def functions(client: StorageClient) -> set[str]:
    rows = client.rows(
        "SELECT name FROM system.functions WHERE name IN ('pwm_quantile', 'pwm_bucket_value')"
    )
    return {name for (name,) in rows}


def status_rows(store: Store) -> list[tuple[int, str, str, str]]:
    return [
        (int(v), n, str(d), c)
        for v, n, d, c in store.client.rows(
            f"SELECT version, name, toString(direction), checksum "
            f"FROM {store.db}.schema_migrations WHERE direction IN ('up', 'down') ORDER BY seq"
        )
    ]


def test_migrate_creates_schema_and_records_every_step(fresh_store: Store) -> None:
    known = load_migrations()
    assert tables(fresh_store.client, fresh_store.settings.database) >= (
        CORE_TABLES | CORE_VIEWS | {"schema_migrations"}
    )
    assert functions(fresh_store.client) == {"pwm_quantile", "pwm_bucket_value"}
    assert status_rows(fresh_store) == [(m.version, m.name, "up", m.checksum) for m in known]
    status = fresh_store.migrator.status()
    assert [s.version for s in status] == [m.version for m in known]
    assert all(s.applied and s.applied_checksum == s.checksum for s in status)
    assert all(s.applied_at_ms is not None and s.applied_at_ms > 0 for s in status)
    assert fresh_store.migrator.current_version() == known[-1].version


def test_migrate_again_is_a_no_op(fresh_store: Store) -> None:
    before_status = status_rows(fresh_store)
    before_ddl = fresh_store.client.rows(
        "SELECT name, create_table_query FROM system.tables WHERE database = {db:String} "
        "ORDER BY name",
        {"db": fresh_store.settings.database},
    )
    assert fresh_store.migrator.migrate() == []
    assert Migrator(fresh_store.client, fresh_store.settings).migrate() == []
    assert status_rows(fresh_store) == before_status
    after_ddl = fresh_store.client.rows(
        "SELECT name, create_table_query FROM system.tables WHERE database = {db:String} "
        "ORDER BY name",
        {"db": fresh_store.settings.database},
    )
    assert after_ddl == before_ddl


def test_up_down_up(fresh_store: Store) -> None:
    store = fresh_store
    known = load_migrations()
    rolled_back = store.migrator.rollback(0)
    assert [m.version for m in rolled_back] == [m.version for m in reversed(known)]
    assert tables(store.client, store.settings.database) == {"schema_migrations"}
    assert functions(store.client) == set()
    assert store.migrator.current_version() == 0
    assert not any(s.applied for s in store.migrator.status())
    assert store.migrator.rollback(0) == []  # nothing left to undo

    reapplied = store.migrator.migrate()
    assert [m.version for m in reapplied] == [m.version for m in known]
    assert tables(store.client, store.settings.database) >= CORE_TABLES | CORE_VIEWS
    assert functions(store.client) == {"pwm_quantile", "pwm_bucket_value"}
    directions = [d for _, _, d, _ in status_rows(store)]
    n = len(known)
    assert directions == ["up"] * n + ["down"] * n + ["up"] * n
    assert store.migrator.current_version() == known[-1].version


def test_partial_rollback_and_forward_to_a_target(fresh_store: Store) -> None:
    store = fresh_store
    rolled_back = store.migrator.rollback(2)
    assert [m.version for m in rolled_back if m.version <= 4] == [4, 3]
    present = tables(store.client, store.settings.database)
    assert {"agg_10s", "agg_1m", "agg_1d"} <= present
    assert "requests_raw" not in present
    assert functions(store.client) == set()
    assert store.migrator.current_version() == 2

    assert [m.version for m in store.migrator.migrate(target=3)] == [3]
    assert functions(store.client) == {"pwm_quantile", "pwm_bucket_value"}
    assert "requests_raw" not in tables(store.client, store.settings.database)
    assert store.migrator.migrate(target=1) == []  # never rolls back
    assert store.migrator.current_version() == 3
    store.migrator.migrate()
    assert "requests_raw" in tables(store.client, store.settings.database)


def test_migrate_recreates_functions_another_database_dropped(
    make_settings: Callable[..., StorageSettings], storage_client: StorageClient
) -> None:
    first, second = make_settings(), make_settings()
    Migrator(storage_client, first).migrate()
    second_migrator = Migrator(storage_client, second)
    second_migrator.migrate()
    second_migrator.rollback(0)
    assert functions(storage_client) == set()
    assert Migrator(storage_client, first).migrate() == []
    assert functions(storage_client) == {"pwm_quantile", "pwm_bucket_value"}


def _migration(version: int, name: str, up: str, down: str, reapply: bool = False) -> Migration:
    header = "-- +reapply\n" if reapply else ""
    return Migration.parse(f"{version:04d}_{name}.sql", f"{header}-- +up\n{up}\n-- +down\n{down}\n")


def test_failed_migration_names_itself_and_is_not_recorded(
    make_settings: Callable[..., StorageSettings], storage_client: StorageClient
) -> None:
    settings = make_settings()
    good = _migration(
        1,
        "things",
        "CREATE TABLE IF NOT EXISTS ${db}.things (x UInt8) ENGINE = Memory;",
        "DROP TABLE IF EXISTS ${db}.things;",
    )
    broken = _migration(
        2,
        "broken_step",
        "CREATE TABLE IF NOT EXISTS ${db}.other (x UInt8) ENGINE = Memory;\n"
        "ALTER TABLE ${db}.things ADD COLUMN y NoSuchType;",
        "DROP TABLE IF EXISTS ${db}.other;",
    )
    migrator = Migrator(storage_client, settings, migrations=[good, broken])
    with pytest.raises(MigrationError) as info:
        migrator.migrate()
    message = str(info.value)
    assert "0002_broken_step" in message
    assert "statement 2/2" in message
    assert "NoSuchType" in message
    assert {s.version: s.applied for s in migrator.status()} == {1: True, 2: False}

    fixed = _migration(
        2,
        "broken_step",
        "CREATE TABLE IF NOT EXISTS ${db}.other (x UInt8) ENGINE = Memory;\n"
        "ALTER TABLE ${db}.things ADD COLUMN IF NOT EXISTS y UInt8;",
        "DROP TABLE IF EXISTS ${db}.other;",
    )
    migrator = Migrator(storage_client, settings, migrations=[good, fixed])
    assert [m.version for m in migrator.migrate()] == [2]
    assert {s.version: s.applied for s in migrator.status()} == {1: True, 2: True}


def test_every_step_is_marked_running_before_it_runs(fresh_store: Store) -> None:
    marks = [
        (int(v), str(d))
        for v, d in fresh_store.client.rows(
            f"SELECT version, toString(direction) FROM {fresh_store.db}.schema_migrations "
            "ORDER BY seq"
        )
    ]
    known = load_migrations()
    assert marks == [pair for m in known for pair in ((m.version, "running"), (m.version, "up"))]
    assert fresh_store.migrator.running_steps() == []


def test_a_run_in_progress_refuses_another_until_taken_over(
    make_settings: Callable[..., StorageSettings], storage_client: StorageClient
) -> None:
    settings = make_settings()
    things = _migration(
        1,
        "things",
        "CREATE TABLE IF NOT EXISTS ${db}.things (x UInt8) ENGINE = Memory;",
        "DROP TABLE IF EXISTS ${db}.things;",
    )
    more = _migration(
        2,
        "more_things",
        "CREATE TABLE IF NOT EXISTS ${db}.more (x UInt8) ENGINE = Memory;",
        "DROP TABLE IF EXISTS ${db}.more;",
    )
    Migrator(storage_client, settings, migrations=[things]).migrate()
    crashed = Migrator(storage_client, settings, migrations=[things, more])
    crashed._record(more, "running")  # a run that died between its mark and its statements

    (running,) = crashed.running_steps()
    assert running.label == "0002_more_things"
    for attempt in (crashed.migrate, lambda: crashed.rollback(0)):
        with pytest.raises(MigrationError) as info:
            attempt()
        message = str(info.value)
        assert "0002_more_things" in message
        assert f"in progress since {running.since}" in message
        assert "--take-over" in message
    assert {s.version: s.applied for s in crashed.status()} == {1: True, 2: False}

    assert [m.version for m in crashed.migrate(take_over=True)] == [2]
    assert crashed.running_steps() == []
    assert {s.version: s.applied for s in crashed.status()} == {1: True, 2: True}
    assert crashed.migrate() == []


def test_a_status_table_from_before_run_marks_learns_them(
    make_settings: Callable[..., StorageSettings], storage_client: StorageClient
) -> None:
    settings = make_settings()
    things = _migration(
        1,
        "things",
        "CREATE TABLE IF NOT EXISTS ${db}.things (x UInt8) ENGINE = Memory;",
        "DROP TABLE IF EXISTS ${db}.things;",
    )
    migrator = Migrator(storage_client, settings, migrations=[things])
    db = quote_identifier(settings.database)
    storage_client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    storage_client.command(
        f"CREATE TABLE {db}.schema_migrations (seq UInt64, version UInt32, name String, "
        "direction Enum8('up' = 1, 'down' = 2), checksum String, "
        "applied_at DateTime64(3, 'UTC') DEFAULT now64(3, 'UTC')) "
        "ENGINE = MergeTree ORDER BY (version, seq)"
    )
    assert [m.version for m in migrator.migrate()] == [1]
    assert migrator.running_steps() == []
    assert {s.version: s.applied for s in migrator.status()} == {1: True}


def test_edited_or_unknown_applied_migrations_are_refused(
    make_settings: Callable[..., StorageSettings], storage_client: StorageClient
) -> None:
    settings = make_settings()
    original = _migration(
        1,
        "things",
        "CREATE TABLE IF NOT EXISTS ${db}.things (x UInt8) ENGINE = Memory;",
        "DROP TABLE IF EXISTS ${db}.things;",
    )
    second = _migration(
        2,
        "more",
        "CREATE TABLE IF NOT EXISTS ${db}.more (x UInt8) ENGINE = Memory;",
        "DROP TABLE IF EXISTS ${db}.more;",
    )
    Migrator(storage_client, settings, migrations=[original, second]).migrate()

    edited = _migration(
        1,
        "things",
        "CREATE TABLE IF NOT EXISTS ${db}.things (x UInt16) ENGINE = Memory;",
        "DROP TABLE IF EXISTS ${db}.things;",
    )
    with pytest.raises(MigrationError, match=r"0001_things was applied with checksum"):
        Migrator(storage_client, settings, migrations=[edited, second]).migrate()
    with pytest.raises(MigrationError, match=r"0002_more applied, which this code does not know"):
        Migrator(storage_client, settings, migrations=[original]).migrate()
    with pytest.raises(MigrationError, match="unknown target version"):
        Migrator(storage_client, settings, migrations=[original, second]).rollback(7)


def test_migration_files_are_validated() -> None:
    with pytest.raises(MigrationFileError, match=r"NNNN_name\.sql"):
        Migration.parse("first.sql", "-- +up\nSELECT 1;\n-- +down\nSELECT 1;\n")
    with pytest.raises(MigrationFileError, match="'-- \\+up' section followed by"):
        Migration.parse("0001_x.sql", "-- +down\nSELECT 1;\n-- +up\nSELECT 1;\n")
    with pytest.raises(MigrationFileError, match="at least one statement"):
        Migration.parse("0001_x.sql", "-- +up\n-- nothing\n-- +down\nSELECT 1;\n")
    migration = Migration.parse("0001_x.sql", "-- +up\nSELECT ${missing};\n-- +down\nSELECT 1;\n")
    with pytest.raises(MigrationFileError, match=r"0001_x \(up\): placeholder 'missing'"):
        migration.render("up", {})
    parsed = Migration.parse(
        "0007_two.sql",
        "-- about\n-- +up\nSELECT 1;\n-- inline comment\nSELECT\n  2;\n-- +down\nSELECT 3;\n",
    )
    assert (parsed.version, parsed.name, parsed.up, parsed.down) == (
        7,
        "two",
        ("SELECT 1", "SELECT\n  2"),
        ("SELECT 3",),
    )


def test_ttl_clauses_are_as_configured_and_reapplied(
    make_settings: Callable[..., StorageSettings], storage_client: StorageClient
) -> None:
    configured = {
        "ttl_10s_days": 3,
        "ttl_1m_days": 31,
        "ttl_1h_days": 200,
        "ttl_1d_days": 1000,
        "ttl_proxy_1m_days": 9,
        "ttl_proxy_1d_days": 120,
        "ttl_raw_hours": 5,
    }
    settings = make_settings(**configured)
    migrator = Migrator(storage_client, settings)
    migrator.migrate()
    expected = {
        "agg_10s": "window_start + toIntervalDay(3)",
        "agg_1m": "window_start + toIntervalDay(31)",
        "agg_1h": "window_start + toIntervalDay(200)",
        "agg_1d": "window_start + toIntervalDay(1000)",
        "proxy_1m": "window_start + toIntervalDay(9)",
        "proxy_1d": "window_start + toIntervalDay(120)",
        "requests_raw": "toDateTime(ts) + toIntervalHour(5)",
    }
    for table, ttl in expected.items():
        create = storage_client.rows(f"SHOW CREATE TABLE `{settings.database}`.{table}")[0][0]
        assert f"TTL {ttl}" in create, (table, create)
    assert migrator.current_ttls() == migrator.configured_ttls()

    changed = settings.model_copy(update={"ttl_10s_days": 7, "ttl_raw_hours": 12})
    relaxed = Migrator(storage_client, changed)
    assert relaxed.migrate() == []
    assert relaxed.apply_ttls() == []  # migrate already applied them
    create = storage_client.rows(f"SHOW CREATE TABLE `{settings.database}`.agg_10s")[0][0]
    assert "TTL window_start + toIntervalDay(7)" in create
    assert relaxed.current_ttls()["requests_raw"] == 12
    assert relaxed.current_ttls()["agg_1m"] == 31


def test_every_table_of_the_cascade_deduplicates(store: Store) -> None:
    rows = store.client.rows(
        "SELECT name, engine_full FROM system.tables WHERE database = {db:String} "
        "AND engine LIKE '%MergeTree'",
        {"db": store.settings.database},
    )
    by_name = dict(rows)
    for table in (*CASCADE_TABLES, "proxy_1m", "proxy_1d", "source_offsets"):
        window = re.search(r"non_replicated_deduplication_window = (\d+)", by_name[table])
        assert window is not None, table
        assert int(window.group(1)) == store.settings.dedup_window_blocks
