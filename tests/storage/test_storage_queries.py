"""Query helpers on real chDB: parameters only, open-window restore, pools, edge cases, settings."""

from __future__ import annotations

import random
import time
from collections import defaultdict
from pathlib import Path

import pytest
from storage_builders import FlushBuilder, random_events
from storage_store import Store

from stream_app.core.accumulator import Accumulator
from stream_app.core.contributions import Contribution, Flush, ScopeKey, SourceRange
from stream_app.storage.settings import StorageSettings, redact_dsn
from stream_app.storage.tables import Resolution, resolution_for_range

HOUR_MS = 3_600_000
HOSTILE_POOL = "o'hara\"); DROP TABLE agg_10s; --"
HOSTILE_REGION = "eu' OR '1'='1"


def hour_ago_ms() -> int:
    return (int(time.time()) // 3600 - 1) * HOUR_MS


def test_hostile_names_are_stored_and_matched_as_plain_values(store: Store, unique: str) -> None:
    pool = f"{HOSTILE_POOL}{unique}"
    acc = Accumulator()
    acc.requests, acc.successes = 3, 2
    acc.latency_buckets = {300: 3}
    start = hour_ago_ms()
    store.sink.write(
        Flush(
            scopes=[Contribution(ScopeKey(pool, HOSTILE_REGION), start, 10, acc)],
            ranges=[SourceRange(f"src'{unique}", 0, 0, 0)],
        )
    )
    rows = store.queries.window_totals(start, start + 10_000, pool=pool, region=HOSTILE_REGION)
    assert [(r.pool, r.region, r.requests, r.successes) for r in rows] == [
        (pool, HOSTILE_REGION, 3, 2)
    ]
    assert (pool, HOSTILE_REGION) in store.queries.pools_regions(since_ms=start)
    assert store.queries.percentiles(start, start + 10_000, (0.5,), pool=pool)[0].requests == 3
    assert store.queries.last_offsets(f"src'{unique}") == {0: 0}
    # Injection attempts through the filters match nothing and break nothing.
    assert store.queries.window_totals(0, 2**41, pool="' OR 1=1 --") == []
    assert store.queries.window_totals(0, 2**41, region="x') OR ('1'='1") == []
    assert (
        store.scalar(
            "SELECT count() FROM system.tables WHERE database = {db:String} AND name = 'agg_10s'",
            {"db": store.settings.database},
        )
        == 1
    )


def test_restore_open_windows(store: Store, unique: str) -> None:
    pool = f"pool{unique}"
    start = hour_ago_ms()
    rng = random.Random(5)
    events = random_events(
        rng, 600, start_ms=start, span_ms=240_000, pools=[pool], regions=["eu", "us"]
    )
    builder = FlushBuilder(source=f"s-{unique}")
    flushes_per_window: dict[tuple[str, int], int] = defaultdict(int)
    for i in range(0, 600, 100):
        chunk = events[i : i + 100]
        store.sink.write(builder.flush(chunk, late_events=1))
        for region, window in {(ev.region, ev.ts_ms - ev.ts_ms % 10_000) for ev in chunk}:
            flushes_per_window[(region, window)] += 1
    since_ms = start + 120_000

    expected_scopes: dict[tuple[str, int], Accumulator] = defaultdict(Accumulator)
    expected_proxies: dict[tuple[str, str, int], Accumulator] = defaultdict(Accumulator)
    for ev in events:
        window = ev.ts_ms - ev.ts_ms % 10_000
        if window >= since_ms:
            expected_scopes[(ev.region, window)].add(ev)
        proxy_window = ev.ts_ms - ev.ts_ms % 60_000
        if proxy_window >= since_ms:
            assert ev.proxy_id is not None
            expected_proxies[(ev.region, ev.proxy_id, proxy_window)].add(ev)

    restored = [r for r in store.queries.restore_open_windows(since_ms) if r.scope.pool == pool]
    scopes = {(r.scope.region, r.window_start_ms): r for r in restored if r.scope.proxy_id is None}
    proxies = {
        (r.scope.region, r.scope.proxy_id, r.window_start_ms): r
        for r in restored
        if r.scope.proxy_id is not None
    }
    assert set(scopes) == set(expected_scopes)
    assert set(proxies) == set(expected_proxies)
    for key, r in scopes.items():
        want = expected_scopes[key]
        assert r.window_s == 10
        assert (r.acc.requests, r.acc.successes, r.acc.bytes_in, r.acc.attempts) == (
            want.requests,
            want.successes,
            want.bytes_in,
            want.attempts,
        )
        assert r.acc.latency_buckets == want.latency_buckets
        assert r.acc.outcomes == {str(k): v for k, v in want.outcomes.items()}
        assert r.acc.status_classes == want.status_classes
        assert (r.acc.latency_min_ms, r.acc.latency_max_ms) == (
            want.latency_min_ms,
            want.latency_max_ms,
        )
        assert r.acc.latency_sum_ms == pytest.approx(want.latency_sum_ms, rel=1e-9)
        assert r.acc.late_events == flushes_per_window[key]  # each flush's partial sum adds 1
        assert r.acc.proxies == set()  # only the estimate is stored
        assert r.distinct_proxies == len(want.proxies)
    for key, r in proxies.items():
        want = expected_proxies[key]
        assert r.window_s == 60
        assert (r.acc.requests, r.acc.latency_buckets) == (want.requests, want.latency_buckets)


def test_no_data_is_no_rows_never_zeros(store: Store, unique: str) -> None:
    q = store.queries
    pool = f"nothing{unique}"
    assert q.window_totals(0, 2**41, "1m", pool=pool) == []
    assert q.range_totals(0, 2**41, "1h", pool=pool) == []
    assert q.percentiles(0, 2**41, (0.5,), "1d", pool=pool) == []
    assert q.proxy_totals(0, 2**41, pool=pool) == []


def test_empty_latency_windows_report_none(store: Store, unique: str) -> None:
    pool = f"late{unique}"
    acc = Accumulator()
    acc.late_events = 4  # a window that only counted late events
    start = hour_ago_ms()
    store.sink.write(
        Flush(
            scopes=[Contribution(ScopeKey(pool, "eu"), start, 10, acc)],
            ranges=[SourceRange(f"s-{unique}", 0, 0, 0)],
        )
    )
    (row,) = store.queries.window_totals(start, start + 10_000, pool=pool)
    assert (row.requests, row.late_events) == (0, 4)
    assert row.latency_min_ms is None
    assert row.latency_max_ms is None
    assert row.success_rate is None
    assert row.quantile(0.5) is None
    (pct,) = store.queries.percentiles(start, start + 10_000, (0.5,), pool=pool)
    assert pct.quantiles == {0.5: None}


def test_proxy_totals_and_half_open_ranges(store: Store, unique: str) -> None:
    pool = f"px{unique}"
    start = hour_ago_ms()
    events = random_events(
        random.Random(8),
        200,
        start_ms=start,
        span_ms=180_000,
        pools=[pool],
        regions=["eu"],
        proxies_per_scope=3,
    )
    store.sink.write(FlushBuilder(source=f"s-{unique}").flush(events))
    rows = store.queries.proxy_totals(start, start + 120_000, pool=pool)
    expected: dict[tuple[str, int], int] = defaultdict(int)
    for ev in events:
        window = ev.ts_ms - ev.ts_ms % 60_000
        if window < start + 120_000:
            assert ev.proxy_id is not None
            expected[(ev.proxy_id, window)] += 1
    assert {(r.proxy_id, r.window_start_ms): r.requests for r in rows} == dict(expected)
    one = next(iter(expected))[0]
    only = store.queries.proxy_totals(start, start + 180_000, pool=pool, proxy_id=one)
    assert {r.proxy_id for r in only} == {one}
    # [start, end): a window starting exactly at end_ms is excluded, one at start_ms included.
    windows = {
        r.window_start_ms for r in store.queries.window_totals(start, start + 60_000, pool=pool)
    }
    assert min(windows) >= start
    assert max(windows) < start + 60_000


def test_invalid_arguments_are_refused(store: Store) -> None:
    q = store.queries
    with pytest.raises(ValueError, match="before start_ms"):
        q.window_totals(10, 5)
    with pytest.raises(ValueError, match="within"):
        q.percentiles(0, 10, (1.5,))
    with pytest.raises(ValueError, match="at least one"):
        q.percentiles(0, 10, ())
    with pytest.raises(ValueError, match="5m"):
        q.window_totals(0, 10, "5m")


def test_settings_defaults_and_validation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = StorageSettings(data_dir=tmp_path)
    assert s.dsn == f"chdb://{tmp_path.resolve()}/clickhouse"
    assert s.embedded
    assert (s.ttl_10s_days, s.ttl_1m_days, s.ttl_1h_days, s.ttl_1d_days) == (14, 90, 400, 1826)
    assert (s.ttl_proxy_1m_days, s.raw_events) == (90, False)
    monkeypatch.setenv("PWM_STORAGE_DSN", "https://u:pw@ch.example:8443")
    monkeypatch.setenv("PWM_STORAGE_TTL_1H_DAYS", "30")
    monkeypatch.setenv("PWM_STORAGE_RAW_EVENTS", "true")
    from_env = StorageSettings()
    assert (from_env.dsn, from_env.ttl_1h_days, from_env.raw_events) == (
        "https://u:pw@ch.example:8443",
        30,
        True,
    )
    assert not from_env.embedded
    assert from_env.redacted_dsn() == "https://u:***@ch.example:8443"
    assert redact_dsn("chdb:///x/y") == "chdb:///x/y"
    with pytest.raises(ValueError, match="scheme"):
        StorageSettings(dsn="mysql://host")
    with pytest.raises(ValueError, match="database"):
        StorageSettings(data_dir=tmp_path, database="x; DROP")
    with pytest.raises(ValueError, match="retry_backoff_max_s"):
        StorageSettings(data_dir=tmp_path, retry_backoff_s=2, retry_backoff_max_s=1)


@pytest.mark.parametrize(
    ("span_ms", "max_points", "expected"),
    [
        (10 * 60_000, 1_500, Resolution.WINDOW),  # 60 windows of 10 s
        (15_000_000, 1_500, Resolution.WINDOW),  # exactly 1500 windows
        (15_000_001, 1_500, Resolution.MINUTE),
        (24 * HOUR_MS, 1_500, Resolution.MINUTE),  # 1440 minutes
        (7 * 24 * HOUR_MS, 1_500, Resolution.HOUR),
        (90 * 24 * HOUR_MS, 1_500, Resolution.DAY),
        (90 * 24 * HOUR_MS, 3_000, Resolution.HOUR),
        (50 * 365 * 24 * HOUR_MS, 10, Resolution.DAY),  # never coarser than a day
    ],
)
def test_resolution_for_range(span_ms: int, max_points: int, expected: Resolution) -> None:
    assert resolution_for_range(span_ms, max_points) == expected


def test_resolution_for_range_needs_a_point() -> None:
    with pytest.raises(ValueError, match="max_points"):
        resolution_for_range(1, 0)


def test_named_rows_decode_columns_by_name(store: Store) -> None:
    rows = store.client.named_rows(
        "SELECT number AS n, toString(number) AS s FROM system.numbers "
        "WHERE number < {limit:UInt32} ORDER BY n",
        parameters={"limit": 2},
    )
    assert rows == [{"n": 0, "s": "0"}, {"n": 1, "s": "1"}]
    assert store.client.named_rows("SELECT 1 AS x WHERE 0") == []
