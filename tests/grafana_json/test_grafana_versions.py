"""``/grafana/query`` with the bodies Grafana 10, 11 and 12 send: each answered with exactly
the numbers REST v1 gives for the same scope, range and step, nulls where no data."""

from __future__ import annotations

import itertools
import time

from stream_app.storage.client import StorageClient
from stream_app.storage.settings import StorageSettings
from tests.api.rest_support import History, build_app, client
from tests.grafana_json.support import (
    HOUR_MS,
    NOW_MS,
    datapoints,
    iso,
    load,
    rest_series,
    with_range,
)

Storage = tuple[StorageSettings, StorageClient]
START_MS = NOW_MS - HOUR_MS


async def test_grafana_10_adhoc_filters_and_object_payloads(
    grafana_storage: Storage, grafana_history: History
) -> None:
    body = with_range(load("grafana10_query.json"), START_MS, NOW_MS)
    async with client(build_app(grafana_storage, NOW_MS)) as http:
        response = await http.post("/grafana/query", json=body)
        assert response.status_code == 200, response.text
        answer = response.json()
        requests = await rest_series(
            http, START_MS, NOW_MS, metric="requests", pool="residential", region="eu-west"
        )
        errors = await rest_series(
            http, START_MS, NOW_MS, metric="error_rate", pool="residential", region="eu-west"
        )
    # C is hidden; B's scope is narrowed by the ad-hoc filter region = eu-west
    assert [(s["refId"], s["target"]) for s in answer] == [
        ("A", "requests{pool=residential,region=eu-west}"),
        ("B", "error_rate{pool=residential,region=eu-west}"),
    ]
    assert answer[0]["datapoints"] == datapoints(requests)
    assert answer[1]["datapoints"] == datapoints(errors)
    assert requests["step_s"] == 10  # 1 h in 1,340 points at 5 s: the 10 s windows
    by_ts = {ts: v for v, ts in answer[0]["datapoints"]}
    gap = [v for ts, v in by_ts.items() if grafana_history.gap[0] <= ts < grafana_history.gap[1]]
    assert len(gap) == 30
    assert all(v is None for v in gap)  # a silent scope is null, never 0
    seeded = [
        e
        for e in grafana_history.events
        if (e.pool, e.region) == ("residential", "eu-west") and e.ts_ms >= START_MS
    ]
    assert sum(v for v in by_ts.values() if v is not None) == len(seeded)


async def test_grafana_11_filters_and_payload_as_code_text(grafana_storage: Storage) -> None:
    body = with_range(load("grafana11_query.json"), START_MS, NOW_MS)
    async with client(build_app(grafana_storage, NOW_MS)) as http:
        response = await http.post("/grafana/query", json=body)
        assert response.status_code == 200, response.text
        answer = response.json()
        success = await rest_series(
            http, START_MS, NOW_MS, metric="success_rate", pool="mobile", region="eu-west"
        )
        throughput = {
            region: await rest_series(
                http, START_MS, NOW_MS, metric="throughput_rps", region=region
            )
            for region in ("eu", "eu-west")
        }
    # region != us-east: one series per region with data but the excluded one (for mobile,
    # only eu-west has data)
    assert [s["target"] for s in answer] == [
        "success_rate{pool=mobile,region=eu-west}",
        "throughput_rps{region=eu}",
        "throughput_rps{region=eu-west}",
    ]
    assert answer[0]["datapoints"] == datapoints(success)
    assert answer[1]["datapoints"] == datapoints(throughput["eu"])
    assert answer[2]["datapoints"] == datapoints(throughput["eu-west"])
    assert all(len(s["datapoints"]) <= 600 for s in answer)


async def test_grafana_12_multi_values_group_by_and_one_of_filters(
    grafana_storage: Storage, grafana_history: History
) -> None:
    body = with_range(load("grafana12_query.json"), START_MS, NOW_MS)
    async with client(build_app(grafana_storage, NOW_MS)) as http:
        response = await http.post("/grafana/query", json=body)
        assert response.status_code == 200, response.text
        *latency, table = response.json()
        rest = {
            pool: await rest_series(
                http,
                START_MS,
                NOW_MS,
                metric="latency_p95_ms",
                pool=pool,
                region="eu-west",
                step_s=20,
            )
            for pool in ("mobile", "residential")
        }
        proxies = await http.get(
            "/api/v1/proxies",
            params={
                "pool": "residential",
                "region": "eu-west",
                "limit": 3,
                "start": iso(START_MS),
                "end": iso(NOW_MS),
            },
        )
    # one series per pool (never a rate added across pools), 240 points at most
    assert [s["target"] for s in latency] == [
        "latency_p95_ms{pool=mobile,region=eu-west}",
        "latency_p95_ms{pool=residential,region=eu-west}",
    ]
    for series, pool in zip(latency, ("mobile", "residential"), strict=True):
        assert series["datapoints"] == datapoints(rest[pool])
        assert len(series["datapoints"]) <= 240
    assert rest["mobile"]["step_s"] == 20
    # top offenders: the table of /api/v1/proxies, the failing proxy first
    assert table["type"] == "table"
    assert table["refId"] == "B"
    columns = [c["text"] for c in table["columns"]]
    rows = [dict(zip(columns, r, strict=True)) for r in table["rows"]]
    expected = proxies.json()["proxies"]
    assert [r["proxy_id"] for r in rows] == [p["proxy_id"] for p in expected]
    assert rows[0]["proxy_id"] == grafana_history.bad_proxy
    assert rows[0]["error_rate"] == 1.0
    assert [r["latency_p95_ms"] for r in rows] == [
        p["metrics"]["latency_ms"]["p95"] for p in expected
    ]


async def test_long_ranges_follow_the_rest_tier_and_step(grafana_storage: Storage) -> None:
    """90 days in at most 1,000 points: REST's rule picks 3 h steps from the hourly rollup
    (REST's own 1,500 points would be 2 h steps)."""
    start_ms = NOW_MS - 90 * 24 * HOUR_MS
    body = {
        "range": {"from": iso(start_ms), "to": iso(NOW_MS), "raw": {"from": "now-90d"}},
        "intervalMs": 3_600_000,
        "maxDataPoints": 1_000,
        "targets": [{"refId": "A", "target": "requests", "payload": {"pool": "mobile"}}],
    }
    async with client(build_app(grafana_storage, NOW_MS)) as http:
        started = time.monotonic()
        response = await http.post("/grafana/query", json=body)
        elapsed_s = time.monotonic() - started
        assert response.status_code == 200, response.text
        (series,) = response.json()
        rest = await rest_series(
            http, start_ms, NOW_MS, metric="requests", pool="mobile", step_s=10_800
        )
    assert (rest["tier"], rest["step_s"]) == ("1h", 10_800)
    assert series["datapoints"] == datapoints(rest)
    assert len(series["datapoints"]) <= 1_000
    steps = [ts for _, ts in series["datapoints"]]
    assert {b - a for a, b in itertools.pairwise(steps)} == {10_800_000}
    assert sum(v for v, _ in series["datapoints"] if v is not None) > 0
    assert elapsed_s < 10


async def test_errors_by_outcome_and_proxy_series_match_rest(
    grafana_storage: Storage, grafana_history: History
) -> None:
    body = {
        "range": {"from": iso(START_MS), "to": iso(NOW_MS)},
        "maxDataPoints": 1_500,
        "targets": [
            {"refId": "A", "target": "errors_by_outcome", "payload": {"pool": "residential"}},
            {
                "refId": "B",
                "target": "error_rate",
                "payload": {"pool": "residential", "proxy": grafana_history.bad_proxy},
            },
        ],
    }
    async with client(build_app(grafana_storage, NOW_MS)) as http:
        response = await http.post("/grafana/query", json=body)
        assert response.status_code == 200, response.text
        answer = response.json()
        timeout = await rest_series(
            http, START_MS, NOW_MS, metric="outcome_rate", outcome="timeout", pool="residential"
        )
        offenders = await http.get(
            "/api/v1/proxies",
            params={"pool": "residential", "start": iso(START_MS), "end": iso(NOW_MS)},
        )
    by_name = {s["target"]: s for s in answer}
    assert set(by_name) == {
        "timeout_rate{pool=residential}",
        "http_error_rate{pool=residential}",
        f"error_rate{{proxy={grafana_history.bad_proxy}}}",
    }
    assert by_name["timeout_rate{pool=residential}"]["datapoints"] == datapoints(timeout)
    bad = by_name[f"error_rate{{proxy={grafana_history.bad_proxy}}}"]["datapoints"]
    (worst,) = [
        p for p in offenders.json()["proxies"] if p["proxy_id"] == grafana_history.bad_proxy
    ]
    assert [v for v, _ in bad if v is not None] == [v for _, v in worst["series"] if v is not None]
    assert {v for v, _ in bad if v is not None} == {1.0}
