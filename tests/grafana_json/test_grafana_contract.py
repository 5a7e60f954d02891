"""The datasource against the simpod-json-datasource contract: the fixture's request answered in
the fixture's reply shapes, with the numbers REST v1 gives for the same scope and range."""

from __future__ import annotations

from typing import Any

from stream_app.storage.client import StorageClient
from stream_app.storage.settings import StorageSettings
from tests.api.rest_support import build_app, client
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


def _shape(item: dict[str, Any]) -> str:
    """Which of the contract's reply shapes ``item`` has (raises if none)."""
    keys = set(item) - {"refId"}
    if keys == {"target", "datapoints"}:
        assert all(isinstance(p, list) and len(p) == 2 for p in item["datapoints"])
        assert all(isinstance(p[1], int) for p in item["datapoints"])
        return "timeseries"
    if keys == {"type", "columns", "rows"} and item["type"] == "table":
        assert all(set(c) == {"text", "type"} for c in item["columns"])
        assert all(len(r) == len(item["columns"]) for r in item["rows"])
        return "table"
    raise AssertionError(f"not a contract shape: {sorted(keys)}")


def test_the_contract_reply_fixture_has_the_shapes_asserted_here() -> None:
    reply = load("contract_query_response.json")
    assert [_shape(i) for i in reply[:2]] == ["timeseries", "table"]


async def test_the_contract_request_is_answered_in_contract_shapes(
    grafana_storage: Storage,
) -> None:
    start_ms, end_ms = NOW_MS - 6 * HOUR_MS, NOW_MS
    body = with_range(load("contract_query_request.json"), start_ms, end_ms)
    async with client(build_app(grafana_storage, NOW_MS)) as http:
        response = await http.post("/grafana/query", json=body)
        assert response.status_code == 200, response.text
        series, table = response.json()
        summary = (await http.get("/api/v1/summary", params={"region": "eu"})).json()
        # Grafana asked for 1080 points at 20 s: REST at the step the datasource chose
        rest = await rest_series(
            http, start_ms, end_ms, metric="success_rate", pool="poolA", region="eu", step_s=30
        )
    assert [_shape(series), _shape(table)] == ["timeseries", "table"]
    assert series["refId"] == "A"
    assert table["refId"] == "B"
    assert series["target"] == "success_rate{pool=poolA,region=eu}"
    assert len(series["datapoints"]) <= 1080
    assert series["datapoints"] == datapoints(rest)
    assert rest["step_s"] == 30
    assert rest["tier"] == "10s"
    values = [v for v, _ in series["datapoints"] if v is not None]
    assert values
    assert all(0.0 <= v <= 1.0 for v in values)
    # six hours, only the last 30 minutes seeded: the earlier steps are null, not 0
    assert series["datapoints"][0][0] is None

    columns = [c["text"] for c in table["columns"]]
    assert columns[:4] == ["Time", "pool", "region", "status"]
    rows = {(r[1], r[2]): dict(zip(columns, r, strict=True)) for r in table["rows"]}
    assert set(rows) == {("poolA", "eu"), ("poolB", "eu")}  # the ad-hoc filter region = eu
    for scope in summary["scopes"]:
        row = rows[(scope["pool"], scope["region"])]
        assert row["Time"] == scope["window_start_ms"]
        assert row["error_rate"] == scope["metrics"]["error_rate"]
        assert row["latency_p95_ms"] == scope["metrics"]["latency_ms"]["p95"]
        assert row["status"] == scope["status"]
    assert rows[("poolB", "eu")]["error_rate"] is not None


async def test_health_answers_both_with_and_without_the_slash(grafana_storage: Storage) -> None:
    async with client(build_app(grafana_storage, NOW_MS)) as http:
        for path in ("/grafana/", "/grafana"):
            response = await http.get(path)
            assert response.status_code == 200, (path, response.text)
            assert response.json()["status"] == "ok"
    assert iso(1795708800123).endswith(".123Z")


async def test_the_targets_of_a_panel_share_one_read_of_their_scope(
    grafana_storage: Storage,
) -> None:
    """p50, p95 and p99 of one scope, and its errors by outcome: storage is read once."""
    start_ms, end_ms = NOW_MS - HOUR_MS, NOW_MS
    app = build_app(grafana_storage, NOW_MS)
    queries = app.state.queries
    reads = 0
    series = queries.series

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        return series(*args, **kwargs)

    queries.series = counting
    payload = {"pool": "poolB", "region": "eu"}
    targets = ["latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "errors_by_outcome"]
    body = with_range(
        {
            "maxDataPoints": 500,
            "intervalMs": 10_000,
            "targets": [
                {"refId": chr(65 + i), "target": t, "payload": payload}
                for i, t in enumerate(targets)
            ],
        },
        start_ms,
        end_ms,
    )
    async with client(app) as http:
        response = await http.post("/grafana/query", json=body)
    assert response.status_code == 200, response.text
    answered = response.json()
    assert [a["refId"] for a in answered[:3]] == ["A", "B", "C"]
    assert {a["refId"] for a in answered[3:]} == {"D"}  # one series per failure outcome seen
    assert answered[3:]
    assert reads == 1
