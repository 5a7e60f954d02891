"""REST v1 reads on seeded history in chDB: values checked against what was seeded."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from schemas.events import Outcome
from stream_app.alerting.engine_state import EngineStateStore
from stream_app.storage.client import StorageClient
from stream_app.storage.settings import StorageSettings
from tests.api.rest_support import (
    MINUTE_MS,
    WINDOW_MS,
    History,
    build_app,
    client,
    seeded_history,
    write,
)
from tests.storage.storage_builders import exact_quantile

Storage = tuple[StorageSettings, StorageClient]

# a window boundary, recent enough for every table's TTL
NOW_MS = time.time_ns() // 1_000_000 // WINDOW_MS * WINDOW_MS


@pytest.fixture
def history(api_storage: Storage) -> History:
    seeded = seeded_history(NOW_MS)
    write(api_storage, seeded.events)
    return seeded


async def test_series_totals_are_exact_and_a_gap_is_null(
    api_storage: Storage, history: History
) -> None:
    async with client(build_app(api_storage, NOW_MS)) as http:
        response = await http.get(
            "/api/v1/series",
            params={"metric": "requests", "pool": "residential", "region": "eu-west"},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["tier"], body["table"], body["step_s"]) == ("10s", "agg_10s", 10)
    assert len(body["points"]) <= 1_500
    mine = [e for e in history.events if (e.pool, e.region) == ("residential", "eu-west")]
    in_range = [e for e in mine if e.ts_ms >= body["start_ms"]]
    values = {ts: v for ts, v in body["points"]}
    assert sum(v for v in values.values() if v is not None) == len(in_range)
    gap_points = [v for ts, v in values.items() if history.gap[0] <= ts < history.gap[1]]
    assert len(gap_points) == 30
    assert all(v is None for v in gap_points)  # explicit null, never 0
    per_step = Counter(e.ts_ms // WINDOW_MS * WINDOW_MS for e in in_range)
    for ts, count in per_step.items():
        assert values[ts] == count
    assert body["freshness"]["stale"] is False


async def test_series_percentiles_come_from_the_merged_histogram(
    api_storage: Storage, history: History
) -> None:
    async with client(build_app(api_storage, NOW_MS)) as http:
        response = await http.get(
            "/api/v1/series",
            params={"metric": "latency_p95_ms", "pool": "mobile", "range": "1h", "step_s": 600},
        )
    body = response.json()
    assert body["step_s"] == 600
    assert body["tier"] == "1m"  # a 10 min step reads the minute rollup
    checked = 0
    for ts, value in body["points"]:
        latencies = [
            e.latency_ms
            for e in history.events
            if e.pool == "mobile" and ts <= e.ts_ms < ts + 600_000
        ]
        if not latencies:
            assert value is None
            continue
        assert value == pytest.approx(exact_quantile(latencies, 0.95), rel=0.011)
        checked += 1
    assert checked >= 4


async def test_series_outcome_rate_needs_its_outcome(
    api_storage: Storage, history: History
) -> None:
    async with client(build_app(api_storage, NOW_MS)) as http:
        missing = await http.get("/api/v1/series", params={"metric": "outcome_rate"})
        rate = await http.get(
            "/api/v1/series",
            params={"metric": "outcome_rate", "outcome": "timeout", "range": "2h", "step_s": 7200},
        )
    assert missing.status_code == 422
    assert missing.headers["content-type"] == "application/problem+json"
    body = rate.json()
    step_ms = body["step_s"] * 1000
    checked = 0
    for ts, value in body["points"]:
        step = [e for e in history.events if ts <= e.ts_ms < ts + step_ms]
        if not step:
            assert value is None
            continue
        timeouts = sum(e.outcome is Outcome.TIMEOUT for e in step)
        assert value == pytest.approx(timeouts / len(step))
        checked += 1
    assert checked >= 1


@pytest.mark.parametrize(
    ("range_", "tier", "table"),
    [
        ("1h", "10s", "agg_10s"),
        ("30d", "1m", "agg_1m"),
        ("90d", "1h", "agg_1h"),
        ("2y", "1d", "agg_1d"),
    ],
)
async def test_the_tier_follows_range_and_retention(
    api_storage: Storage, history: History, range_: str, tier: str, table: str
) -> None:
    async with client(build_app(api_storage, NOW_MS)) as http:
        response = await http.get(
            "/api/v1/series", params={"metric": "requests", "pool": "mobile", "range": range_}
        )
    body = response.json()
    assert (body["tier"], body["table"]) == (tier, table)
    assert len(body["points"]) <= 1_500
    assert (body["end_ms"] - body["start_ms"]) // (body["step_s"] * 1000) == len(body["points"])
    total = sum(v for _, v in body["points"] if v is not None)
    assert total == sum(e.pool == "mobile" for e in history.events)  # every tier agrees


async def test_summary_shows_the_latest_closed_window_with_freshness(
    api_storage: Storage, history: History
) -> None:
    silent_since = NOW_MS - 3 * 3_600_000 + 25_000  # silent for hours: read to the minute
    write(api_storage, [msgspec.structs.replace(history.events[0], pool="isp", ts_ms=silent_since)])
    async with client(build_app(api_storage, NOW_MS)) as http:
        response = await http.get("/api/v1/summary")
    assert response.status_code == 200
    body = response.json()
    settled_end = (NOW_MS - 7_000) // WINDOW_MS * WINDOW_MS
    assert body["settled_end_ms"] == settled_end
    scopes = {(s["pool"], s["region"]): s for s in body["scopes"]}
    isp = scopes.pop(("isp", history.events[0].region))
    assert isp["status"] == "no_data"
    assert isp["metrics"] is None
    minute_end = silent_since // MINUTE_MS * MINUTE_MS + MINUTE_MS
    assert isp["freshness"]["newest_data_end_ms"] == minute_end
    assert isp["freshness"]["stale"] is True
    assert set(scopes) == {
        (p, r) for p in ("residential", "mobile") for r in ("eu-west", "us-east")
    }
    fresh = scopes[("mobile", "eu-west")]
    assert fresh["status"] == "ok"
    assert fresh["window_end_ms"] == settled_end
    window = [
        e
        for e in history.events
        if (e.pool, e.region) == ("mobile", "eu-west")
        and settled_end - WINDOW_MS <= e.ts_ms < settled_end
    ]
    metrics = fresh["metrics"]
    assert metrics["requests"] == len(window)
    successes = sum(e.outcome is Outcome.SUCCESS for e in window)
    assert metrics["success_rate"] == pytest.approx(successes / len(window))
    assert metrics["throughput_rps"] == pytest.approx(len(window) / 10)
    assert metrics["bytes_in"] == sum(e.bytes_in for e in window)
    assert metrics["latency_ms"]["p50"] == pytest.approx(
        exact_quantile([e.latency_ms for e in window], 0.5), rel=0.011
    )
    assert fresh["freshness"]["stale"] is False
    newest = max(e.ts_ms for e in history.events if (e.pool, e.region) == ("mobile", "eu-west"))
    assert fresh["freshness"]["newest_data_end_ms"] == newest // WINDOW_MS * WINDOW_MS + WINDOW_MS

    stale = scopes[("mobile", "us-east")]  # silent for 10 min, staleness 120 s
    assert stale["status"] in ("stale", "no_data")
    assert stale["freshness"]["stale"] is True
    assert stale["freshness"]["age_s"] >= 590


async def test_pools_regions_and_filters(api_storage: Storage, history: History) -> None:
    async with client(build_app(api_storage, NOW_MS)) as http:
        pools = (await http.get("/api/v1/pools")).json()
        regions = (await http.get("/api/v1/regions")).json()
        one = (await http.get("/api/v1/summary", params={"pool": "mobile"})).json()
    assert pools["pools"] == [
        {"pool": "mobile", "regions": ["eu-west", "us-east"]},
        {"pool": "residential", "regions": ["eu-west", "us-east"]},
    ]
    assert [r["region"] for r in regions["regions"]] == ["eu-west", "us-east"]
    assert {s["pool"] for s in one["scopes"]} == {"mobile"}


async def test_top_offenders_by_error_rate_with_their_series(
    api_storage: Storage, history: History
) -> None:
    async with client(build_app(api_storage, NOW_MS)) as http:
        response = await http.get(
            "/api/v1/proxies",
            params={"pool": "residential", "region": "eu-west", "limit": 3, "range": "1h"},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["table"] == "proxy_1m"
    worst = body["proxies"][0]
    assert worst["proxy_id"] == history.bad_proxy
    mine = [e for e in history.events if e.proxy_id == history.bad_proxy]
    assert worst["metrics"]["requests"] == len(mine)
    assert worst["metrics"]["error_rate"] == 1.0
    assert len(body["proxies"]) == 3
    assert sum(len(p["series"]) for p in body["proxies"]) <= 1_500
    assert body["step_s"] % 60 == 0
    rates = [p["metrics"]["error_rate"] for p in body["proxies"]]
    assert rates == sorted(rates, reverse=True)
    assert any(v == 1.0 for _, v in worst["series"])
    gap = [
        v
        for ts, v in worst["series"]
        if history.gap[0] <= ts and ts + body["step_s"] * 1000 <= history.gap[1]
    ]
    assert all(v is None for v in gap)


async def test_storage_failure_is_a_503_without_engine_text(api_storage: Storage) -> None:
    settings, storage_client = api_storage
    broken = (settings.model_copy(update={"database": "api_missing_db"}), storage_client)
    async with client(build_app(broken, NOW_MS)) as http:
        response = await http.get("/api/v1/summary")
        metrics = (await http.get("/metrics")).text
    assert "pwm_api_query_failures_total 1.0" in metrics
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "api_missing_db" not in response.text
    assert "UNKNOWN_DATABASE" not in response.text.upper()


BASELINE_RULES = """\
version: 1
rules:
  - id: mobile-errors-baseline
    name: MobileErrorsBaseline
    kind: baseline
    metric: error_rate
    selector: {pool: mobile}
    baseline: {method: ewma, k_sigma: 3, min_abs_change: 0.01, warmup_windows: 10}
"""


async def test_summary_shows_the_deviation_from_a_learnt_baseline(
    api_storage: Storage, history: History, tmp_path: Path
) -> None:
    settings, storage_client = api_storage
    rules = tmp_path / "rules.yaml"
    rules.write_text(BASELINE_RULES)
    learnt = {"method": "ewma", "mean": 0.02, "var": 0.0001, "n": 500}
    EngineStateStore(storage_client, settings.database).save(
        "demo-scope-rules",
        NOW_MS,
        {
            "baselines": [
                {
                    "rule_id": "mobile-errors-baseline",
                    "scope": "pool_region|mobile|eu-west|",
                    "data": learnt,
                }
            ]
        },
    )
    async with client(build_app(api_storage, NOW_MS, rules_path=rules)) as http:
        body = (await http.get("/api/v1/summary")).json()
    scopes = {(s["pool"], s["region"]): s for s in body["scopes"]}
    judged = scopes[("mobile", "eu-west")]
    [deviation] = judged["baselines"]
    error_rate = judged["metrics"]["error_rate"]
    assert deviation["state"] == "judged"
    assert deviation["value"] == pytest.approx(error_rate)
    assert deviation["baseline"] == pytest.approx(0.02)
    assert deviation["sigma"] == pytest.approx(abs(error_rate - 0.02) / 0.01)
    assert deviation["breach"] is (error_rate - 0.02 > 0.03)
    assert scopes[("mobile", "us-east")]["baselines"] == []  # no closed window lately
    assert scopes[("residential", "eu-west")]["baselines"] == []  # not covered by the rule
