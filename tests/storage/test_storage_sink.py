"""The ClickHouse sink on real chDB: idempotent flushes, offsets, retries, poison, raw events."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import (
    DatabaseError,
    DataError,
    OperationalError,
    ProgrammingError,
)
from storage_builders import FlushBuilder, random_events
from storage_store import Store

from schemas.latency_buckets import bucket_key
from stream_app.core.accumulator import Accumulator
from stream_app.core.contributions import Contribution, Flush, ScopeKey, SourceRange
from stream_app.storage.client import StorageClient, get_client, translate_error
from stream_app.storage.errors import (
    DataRejected,
    SinkRejected,
    SinkUnavailable,
    StorageConfigError,
)
from stream_app.storage.settings import StorageSettings
from stream_app.storage.sink import ClickHouseSink
from stream_app.storage.tables import (
    POOL_RESOLUTION_TABLES,
    PROXY_DAY_TABLE,
    PROXY_TABLE,
    RESOLUTION_TABLES,
)

HOUR_MS = 3_600_000


def recent_hour_ms(hours_ago: int = 2) -> int:
    """The start of a whole hour a little in the past (well inside every TTL)."""
    return (int(time.time()) // 3600 - hours_ago) * HOUR_MS


AGG_TABLES = (*RESOLUTION_TABLES.values(), *POOL_RESOLUTION_TABLES.values())  # pools: 0030
PROXY_TABLES = (PROXY_TABLE, PROXY_DAY_TABLE)  # proxy_1d: 0031


def snapshot(store: Store, pool: str, source: str) -> dict[str, tuple[Any, ...]]:
    """Raw row counts (merges are stopped) and totals of every table the flushes reach."""
    db = store.db
    params = {"pool": pool, "source": source}
    state: dict[str, tuple[Any, ...]] = {}
    for table in AGG_TABLES:
        state[table] = store.client.rows(
            f"SELECT count(), sum(requests), sum(successes), sumMap(outcomes), "
            f"sumMap(status_classes), sumMap(latency_buckets), sum(bytes_in), sum(bytes_out), "
            f"sum(attempts), uniqCombinedMerge(proxies) FROM {db}.{table} "
            f"WHERE pool = {{pool:String}}",
            params,
        )[0]
    for table in PROXY_TABLES:
        state[table] = store.client.rows(
            f"SELECT count(), sum(requests), sumMap(latency_buckets), uniqExact(proxy_id) "
            f"FROM {db}.{table} WHERE pool = {{pool:String}}",
            params,
        )[0]
    state["source_offsets"] = store.client.rows(
        f"SELECT count(), max(last_offset), sum(flushes) FROM {db}.source_offsets "
        f"WHERE source = {{source:String}}",
        params,
    )[0]
    return state


def stop_merges(store: Store) -> None:
    for table in (*AGG_TABLES, *PROXY_TABLES, "source_offsets"):
        store.client.command(f"SYSTEM STOP MERGES {store.db}.{table}")


def events_for(pool: str, count: int, seed: int, start_ms: int | None = None) -> list[Any]:
    rng = random.Random(seed)
    start = recent_hour_ms() if start_ms is None else start_ms
    return random_events(
        rng, count, start_ms=start, span_ms=90_000, pools=[pool], regions=["eu", "us"]
    )


def test_same_flush_twice_changes_no_table(fresh_store: Store, unique: str) -> None:
    stop_merges(fresh_store)
    pool, source = f"pool{unique}", f"kafka-{unique}"
    builder = FlushBuilder(source=source)
    first = builder.flush(events_for(pool, 300, seed=1))
    fresh_store.sink.write(first)
    once = snapshot(fresh_store, pool, source)
    assert once["agg_10s"][1] == 300
    assert once["source_offsets"][1:] == (first.ranges[0].last_offset, 1)

    fresh_store.sink.write(first)
    assert snapshot(fresh_store, pool, source) == once

    second = builder.flush(events_for(pool, 200, seed=2))
    fresh_store.sink.write(second)
    twice = snapshot(fresh_store, pool, source)
    for table in AGG_TABLES:
        assert twice[table][1] == 500, table
        assert twice[table][0] > once[table][0], table
    for table in PROXY_TABLES:
        assert twice[table][1] == 500, table
        assert twice[table][0] > once[table][0], table
    assert twice["source_offsets"][1:] == (second.ranges[0].last_offset, 2)

    # A re-delivery of the first flush after others is still recognised.
    fresh_store.sink.write(first)
    assert snapshot(fresh_store, pool, source) == twice


def test_flush_without_ranges_is_written_every_time(store: Store, unique: str) -> None:
    pool = f"pool{unique}"
    flush = FlushBuilder(source=f"s-{unique}").flush(events_for(pool, 50, seed=3))
    unranged = Flush(scopes=flush.scopes, proxies=flush.proxies, ranges=[])
    store.sink.write(unranged)
    store.sink.write(unranged)  # identical content: must not be taken for a duplicate
    total = store.scalar(
        f"SELECT sum(requests) FROM {store.db}.agg_1h WHERE pool = {{p:String}}", {"p": pool}
    )
    assert total == 100
    assert store.sink.stats.undeduplicated_writes == 2


def test_last_offsets_per_partition(store: Store, unique: str) -> None:
    source = f"kafka-{unique}"
    pool = f"pool{unique}"
    assert store.queries.last_offsets(source) == {}
    p0 = FlushBuilder(source=source, partition=0)
    p3 = FlushBuilder(source=source, partition=3)
    flushes = [p0.flush(events_for(pool, 10, seed=s)) for s in range(3)]
    flushes.append(p3.flush(events_for(pool, 7, seed=9)))
    for flush in reversed(flushes):  # out of order: the maximum wins
        store.sink.write(flush)
    # A flush with offsets only (no events survived decoding) still moves the offset.
    store.sink.write(Flush(ranges=[SourceRange(source, 3, p3.next_offset, p3.next_offset + 4)]))
    assert store.queries.last_offsets(source) == {
        0: p0.next_offset - 1,
        3: p3.next_offset + 4,
    }
    assert store.queries.last_offsets(f"other-{unique}") == {}


async def test_write_async(store: Store, unique: str) -> None:
    pool = f"pool{unique}"
    flush = FlushBuilder(source=f"s-{unique}").flush(events_for(pool, 40, seed=4))
    await store.sink.write_async(flush)
    totals = store.queries.range_totals(0, 2**41, pool=pool)
    assert sum(t.requests for t in totals) == 40


def _too_many_parts(store: Store, table: str, limit: int) -> None:
    store.client.command(
        f"ALTER TABLE {store.db}.{table} MODIFY SETTING parts_to_throw_insert = {limit}"
    )


def test_retriable_failure_is_retried_without_double_counting(
    fresh_store: Store, unique: str
) -> None:
    """agg_1h refuses inserts (too many parts) while the other views accept the same block."""
    stop_merges(fresh_store)
    pool, source = f"pool{unique}", f"kafka-{unique}"
    builder = FlushBuilder(source=source)
    start = recent_hour_ms()
    fresh_store.sink.write(builder.flush(events_for(pool, 100, seed=5, start_ms=start)))
    _too_many_parts(fresh_store, "agg_1h", 1)

    delays: list[float] = []

    def sleep(delay_s: float) -> None:
        delays.append(delay_s)
        if len(delays) == 2:  # the operator fixes the table during the second back-off
            _too_many_parts(fresh_store, "agg_1h", 3000)

    settings = fresh_store.settings.model_copy(update={"insert_retries": 4})
    sink = ClickHouseSink(fresh_store.client, settings, sleep=sleep, jitter=lambda: 1.0)
    sink.write(builder.flush(events_for(pool, 60, seed=6, start_ms=start)))

    assert delays == [pytest.approx(0.2), pytest.approx(0.4)]
    assert sink.stats.retries == 2
    assert sink.stats.flushes_written == 1
    state = snapshot(fresh_store, pool, source)
    for table in AGG_TABLES:
        assert state[table][1] == 160, table
    for table in PROXY_TABLES:
        assert state[table][1] == 160, table
    assert state["source_offsets"][2] == 2


def test_retries_are_bounded_then_the_same_flush_is_written_once(
    fresh_store: Store, unique: str
) -> None:
    stop_merges(fresh_store)
    pool, source = f"pool{unique}", f"kafka-{unique}"
    builder = FlushBuilder(source=source)
    start = recent_hour_ms()
    fresh_store.sink.write(builder.flush(events_for(pool, 100, seed=7, start_ms=start)))
    _too_many_parts(fresh_store, "agg_1m", 1)
    delays: list[float] = []
    settings = fresh_store.settings.model_copy(
        update={"insert_retries": 3, "retry_backoff_s": 0.5, "retry_backoff_max_s": 1.5}
    )
    sink = ClickHouseSink(fresh_store.client, settings, sleep=delays.append, jitter=lambda: 0.0)
    second = builder.flush(events_for(pool, 30, seed=8, start_ms=start))
    with pytest.raises(SinkUnavailable, match="failed 4 times") as info:
        sink.write(second)
    assert info.value.retriable
    assert delays == [pytest.approx(d) for d in (0.25, 0.5, 0.75)]  # half of 0.5, 1, 1.5 (cap)
    assert (sink.stats.retries, sink.stats.gave_up, sink.stats.flushes_written) == (3, 1, 0)

    _too_many_parts(fresh_store, "agg_1m", 3000)
    sink.write(second)  # what the runtime does after its own back-off
    state = snapshot(fresh_store, pool, source)
    for table in AGG_TABLES:
        assert state[table][1] == 130, table
    for table in PROXY_TABLES:
        assert state[table][1] == 130, table
    assert state["source_offsets"][1:] == (second.ranges[0].last_offset, 2)


def test_rows_refused_for_their_data_are_isolated_and_the_rest_is_stored(
    store: Store, unique: str
) -> None:
    pool = f"pool{unique}"
    source = f"s-{unique}"
    good = FlushBuilder(source=source).flush(events_for(pool, 40, seed=3))
    bad = Accumulator()
    bad.requests = -5  # cannot be a UInt64
    poison = Contribution(ScopeKey(pool, "zz-poison"), recent_hour_ms(), 10, bad)
    flush = Flush(scopes=[*good.scopes, poison], proxies=good.proxies, ranges=good.ranges)
    delays: list[float] = []
    sink = ClickHouseSink(store.client, store.settings, sleep=delays.append)

    rejected = sink.write(flush)

    assert [r.contribution for r in rejected] == [poison]
    assert rejected[0].level == "scope"
    assert "requests" in rejected[0].reason
    assert b'"requests":-5' in rejected[0].document()
    assert delays == []  # poison is never retried
    assert sink.stats.rejected_rows == 1
    assert sink.stats.bisect_inserts >= 2
    stored = store.scalar(
        f"SELECT sum(requests) FROM {store.db}.agg_10s WHERE pool = {{pool:String}}",
        {"pool": pool},
    )
    assert stored == sum(c.acc.requests for c in good.scopes) == 40
    assert store.queries.last_offsets(source) == {0: good.ranges[0].last_offset}

    # A rebuilt flush (same rows, same token) bisects the same way: nothing counts twice.
    assert [r.contribution for r in sink.write(flush)] == [poison]
    stored_again = store.scalar(
        f"SELECT sum(requests) FROM {store.db}.agg_10s WHERE pool = {{pool:String}}",
        {"pool": pool},
    )
    assert stored_again == 40


def test_a_flush_refused_whole_still_records_its_offsets(store: Store, unique: str) -> None:
    acc = Accumulator()
    acc.requests = -5
    flush = Flush(
        scopes=[Contribution(ScopeKey(f"pool{unique}", "eu"), recent_hour_ms(), 10, acc)],
        ranges=[SourceRange(f"s-{unique}", 0, 0, 7)],
    )
    sink = ClickHouseSink(store.client, store.settings, sleep=lambda _: None)
    rejected = sink.write(flush)
    assert len(rejected) == 1
    assert store.queries.last_offsets(f"s-{unique}") == {0: 7}


def test_unmigrated_database_is_rejected(
    make_settings: Callable[..., StorageSettings], storage_client: StorageClient, unique: str
) -> None:
    sink = ClickHouseSink(storage_client, make_settings(), sleep=lambda _: None)
    flush = FlushBuilder(source=f"s-{unique}").flush(events_for(f"pool{unique}", 5, seed=1))
    with pytest.raises(SinkRejected, match=r"UNKNOWN_DATABASE|does not exist"):
        sink.write(flush)


def test_misaligned_windows_are_counted_and_stored(store: Store, unique: str) -> None:
    pool = f"pool{unique}"
    builder = FlushBuilder(source=f"s-{unique}", window_s=7)
    store.sink.write(builder.flush(events_for(pool, 20, seed=2)))
    assert store.sink.stats.misaligned_windows == 1
    assert sum(t.requests for t in store.queries.range_totals(0, 2**41, "1d", pool=pool)) == 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_server_is_retriable_and_hides_the_password() -> None:
    settings = StorageSettings(
        dsn=f"http://pwm:s3cret-pw@127.0.0.1:{free_port()}", insert_timeout_s=2
    )
    with pytest.raises(SinkUnavailable) as info:
        get_client(settings)
    assert "s3cret-pw" not in str(info.value)
    assert "pwm:***@127.0.0.1" in str(info.value)


def test_a_second_chdb_path_is_a_configuration_error(tmp_path: Any, chdb_dsn: str) -> None:
    with pytest.raises(StorageConfigError, match="one data path per process"):
        get_client(StorageSettings(dsn=f"chdb://{tmp_path}/other"))


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (OperationalError("connection reset"), SinkUnavailable),
        (DatabaseError("Too many parts", code=252), SinkUnavailable),
        (DatabaseError("Memory limit exceeded", code=241), SinkUnavailable),
        (DatabaseError("Timeout exceeded", code=159), SinkUnavailable),
        (DatabaseError("Unknown table", code=60), SinkRejected),
        (DatabaseError("Syntax error", code=62), SinkRejected),
        (ProgrammingError("bad parameters"), SinkRejected),
        (TimeoutError("read timed out"), SinkUnavailable),
        (OSError(28, "No space left on device"), SinkUnavailable),
        (OverflowError("can't convert negative int to unsigned"), DataRejected),
        (DataError("Unable to create native array for column `window_start`"), DataRejected),
        (DatabaseError("Value out of range", code=321), DataRejected),
        (DatabaseError("Type mismatch", code=53), DataRejected),
    ],
)
def test_error_translation(error: Exception, expected: type[Exception]) -> None:
    translated = translate_error(error, "insert into t")
    assert type(translated) is expected
    assert str(error) in str(translated)


def test_raw_events_when_enabled(store: Store, unique: str) -> None:
    pool = f"pool{unique}"
    events = events_for(pool, 400, seed=11)
    raw_sink = ClickHouseSink(store.client, store.settings.model_copy(update={"raw_events": True}))
    assert raw_sink.write_raw(events, dedup_token=f"kafka-{unique}/0/0-399") == 400
    assert raw_sink.write_raw(events, dedup_token=f"kafka-{unique}/0/0-399") == 400
    rows = store.client.rows(
        f"SELECT event_id, latency_ms, latency_bucket, toUnixTimestamp64Milli(ts), outcome, "
        f"status_code FROM {store.db}.requests_raw WHERE pool = {{p:String}}",
        {"p": pool},
    )
    assert len(rows) == 400  # the second write was a re-delivery
    by_id = {ev.event_id: ev for ev in events}
    for event_id, latency_ms, key, ts_ms, outcome, status in rows:
        ev = by_id[event_id]
        assert latency_ms == ev.latency_ms
        assert key == bucket_key(ev.latency_ms)
        assert ts_ms == ev.ts_ms
        assert outcome == str(ev.outcome)
        assert status == (ev.status_code or 0)
    assert raw_sink.stats.raw_events_written == 800

    # Disabled (the default): nothing is written.
    other = f"other{unique}"
    assert store.sink.write_raw(events_for(other, 10, seed=12)) == 0
    count = store.scalar(
        f"SELECT count() FROM {store.db}.requests_raw WHERE pool = {{p:String}}", {"p": other}
    )
    assert count == 0


def test_invalid_windows_are_poison(store: Store, unique: str) -> None:
    acc = Accumulator()
    acc.requests = 1
    scope = ScopeKey(f"pool{unique}", "eu")
    for start_ms, window_s in ((recent_hour_ms(), 0), (-10_000, 10)):
        flush = Flush(
            scopes=[Contribution(scope, start_ms, window_s, acc)],
            ranges=[SourceRange(f"s-{unique}", 0, 0, 0)],
        )
        with pytest.raises(SinkRejected, match="invalid window"):
            store.sink.write(flush)
    assert store.queries.last_offsets(f"s-{unique}") == {}


def test_a_window_after_2106_is_refused_as_data_not_as_an_outage(store: Store, unique: str) -> None:
    """The poison pill that found the issue: window_start beyond ClickHouse's DateTime."""
    good = FlushBuilder(source=f"s-{unique}").flush(events_for(f"pool{unique}", 10, seed=4))
    acc = Accumulator()
    acc.requests = 1
    beyond = Contribution(ScopeKey(f"pool{unique}", "eu"), 5_000_000_000_000, 10, acc)
    flush = Flush(scopes=[*good.scopes, beyond], proxies=good.proxies, ranges=good.ranges)
    rejected = ClickHouseSink(store.client, store.settings, sleep=lambda _: None).write(flush)
    assert [r.contribution for r in rejected] == [beyond]
    assert "window_start" in rejected[0].reason


def test_a_sink_loads_what_the_first_insert_would_load(tmp_path: Path) -> None:
    """clickhouse-connect imports pandas on its first insert (to recognise a DataFrame); a sink
    does it when it is made, so the first flush of a worker is not 0.3 s late."""
    script = (
        "import sys\n"
        "from clickhouse_connect.driver import options\n"
        "from stream_app.storage.client import get_client\n"
        "from stream_app.storage.settings import StorageSettings\n"
        "from stream_app.storage.sink import ClickHouseSink\n"
        f"settings = StorageSettings(dsn='chdb://{tmp_path}', database='warm')\n"
        "client = get_client(settings)\n"
        "before = 'pd' in vars(options)\n"
        "ClickHouseSink(client, settings)\n"
        "print(before, 'pd' in vars(options), 'pandas' in sys.modules)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", "True", "True"]
