"""The datasource's resource calls (metrics, payload options, variables, ad-hoc keys and
values), annotations from the alert history, auth, and bad bodies as 4xx problems."""

from __future__ import annotations

from typing import Any

import pytest

from stream_app.storage.client import StorageClient
from stream_app.storage.settings import StorageSettings
from tests.api.rest_support import INGEST_TOKEN, READ_TOKEN, History, build_app, client
from tests.grafana_json.support import (
    ALERT_STARTS_MS,
    HOUR_MS,
    MINUTE_MS,
    NOW_MS,
    PROBLEM,
    iso,
    load,
    with_range,
)

Storage = tuple[StorageSettings, StorageClient]
RANGE = {"from": iso(NOW_MS - 6 * HOUR_MS), "to": iso(NOW_MS), "raw": {"from": "now-6h"}}


async def _post(storage: Storage, path: str, body: Any) -> Any:
    async with client(build_app(storage, NOW_MS)) as http:
        response = await http.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("body", [{}, None, {"metric": "success_rate", "payload": "{}"}])
async def test_metrics_lists_every_target_with_its_payloads(
    grafana_storage: Storage, body: Any
) -> None:
    metrics = await _post(grafana_storage, "/grafana/metrics", body)
    by_value = {m["value"]: m for m in metrics}
    assert {"success_rate", "error_rate", "latency_p99_ms", "throughput_rps"} <= set(by_value)
    assert {"errors_by_outcome", "pool_table", "top_proxies", "alert_annotations"} <= set(by_value)
    for metric in metrics:
        assert metric["label"]
        assert all(p["name"] and p["type"] for p in metric["payloads"])
    payloads = {p["name"]: p for p in by_value["success_rate"]["payloads"]}
    assert list(payloads)[:3] == ["pool", "region", "proxy"]
    assert payloads["pool"]["type"] == "multi-select"
    group_by = [o["value"] for o in payloads["group_by"]["options"]]
    assert group_by == ["pool", "region", "pool,region"]
    if body and body.get("metric"):
        assert metrics[0]["value"] == body["metric"]


async def test_payload_options_come_from_storage(grafana_storage: Storage) -> None:
    regions = await _post(
        grafana_storage,
        "/grafana/metric-payload-options",
        load("grafana_metric_payload_options.json"),
    )
    assert regions == [{"label": r, "value": r} for r in ("eu-west", "us-east")]
    pools = await _post(
        grafana_storage,
        "/grafana/metric-payload-options",
        {"metric": "success_rate", "payload": {}, "name": "pool"},
    )
    assert [p["value"] for p in pools] == ["mobile", "poolA", "poolB", "residential"]
    outcomes = await _post(
        grafana_storage,
        "/grafana/metric-payload-options",
        {"metric": "outcome_rate", "payload": {}, "name": "outcome"},
    )
    assert "timeout" in [o["value"] for o in outcomes]
    assert "success" not in [o["value"] for o in outcomes]


async def test_variables_list_pools_regions_and_a_pools_proxies(
    grafana_storage: Storage, grafana_history: History
) -> None:
    regions = await _post(grafana_storage, "/grafana/variable", load("grafana_variable.json"))
    assert regions == [{"__text": r, "__value": r} for r in ("eu-west", "us-east")]
    pools = await _post(
        grafana_storage, "/grafana/variable", {"payload": {"target": "pool"}, "range": RANGE}
    )
    assert [p["__value"] for p in pools] == ["mobile", "poolA", "poolB", "residential"]
    eu_pools = await _post(
        grafana_storage, "/grafana/variable", {"payload": {"target": "pool", "region": "eu"}}
    )
    assert [p["__value"] for p in eu_pools] == ["poolA", "poolB"]
    proxies = await _post(
        grafana_storage,
        "/grafana/variable",
        {
            "payload": {"target": "proxy", "pool": "residential", "region": "eu-west"},
            "range": RANGE,
        },
    )
    assert proxies[0] == {"__text": grafana_history.bad_proxy, "__value": grafana_history.bad_proxy}
    seeded = {
        e.proxy_id
        for e in grafana_history.events
        if (e.pool, e.region) == ("residential", "eu-west")
    }
    assert {p["__value"] for p in proxies} == seeded


async def test_tag_keys_and_values(grafana_storage: Storage) -> None:
    keys = await _post(grafana_storage, "/grafana/tag-keys", {})
    assert keys == [{"type": "string", "text": "pool"}, {"type": "string", "text": "region"}]
    values = await _post(grafana_storage, "/grafana/tag-values", load("grafana_tag_values.json"))
    assert values == [{"text": "mobile"}, {"text": "residential"}]
    regions = await _post(grafana_storage, "/grafana/tag-values", {"key": "region"})
    assert regions == [{"text": r} for r in ("eu", "eu-west", "us-east")]


def _rows(table: dict[str, Any]) -> list[dict[str, Any]]:
    columns = [c["text"] for c in table["columns"]]
    return [dict(zip(columns, r, strict=True)) for r in table["rows"]]


async def test_annotation_queries_show_alert_incidents(grafana_storage: Storage) -> None:
    """Grafana runs an annotation as a /query whose target has refId Anno."""
    body = {
        "range": RANGE,
        "requestId": "AQ",
        "targets": [{"refId": "Anno", "datasource": {"uid": "proxywhirl-json"}, "payload": ""}],
    }
    (table,) = await _post(grafana_storage, "/grafana/query", body)
    assert [c["text"] for c in table["columns"]] == ["time", "timeEnd", "title", "text", "tags"]
    events = _rows(table)
    # the incident of three days ago is outside the six hours
    assert [e["time"] for e in events] == [
        ALERT_STARTS_MS["residential"],
        ALERT_STARTS_MS["mobile"],
    ]
    residential, mobile = events
    assert residential["timeEnd"] == ALERT_STARTS_MS["residential"] + 5 * MINUTE_MS
    assert mobile["timeEnd"] is None  # still firing
    assert residential["title"] == "PoolErrors (page)"
    assert "errors in residential" in residential["text"]
    assert set(residential["tags"].split(",")) >= {"resolved", "severity:page", "pool:residential"}

    week = {"from": iso(NOW_MS - 7 * 24 * HOUR_MS), "to": iso(NOW_MS)}
    by_target = {
        "range": week,
        "targets": [
            {"refId": "A", "target": "alert_annotations", "payload": {"severity": "warning"}},
            {"refId": "B", "target": "active_alerts", "payload": {}},
        ],
    }
    warnings, active = await _post(grafana_storage, "/grafana/query", by_target)
    assert [e["time"] for e in _rows(warnings)] == [ALERT_STARTS_MS["isp"]]
    assert [(a["pool"], a["severity"]) for a in _rows(active)] == [("mobile", "page")]

    legacy = await _post(
        grafana_storage,
        "/grafana/annotations",
        {"range": week, "annotation": {"name": "alerts", "query": '{"pool": "residential"}'}},
    )
    assert [(e["time"], e["tags"][0]) for e in legacy] == [
        (ALERT_STARTS_MS["residential"], "resolved")
    ]
    assert legacy[0]["annotation"]["name"] == "alerts"


async def test_reads_need_the_read_role_off_loopback(grafana_storage: Storage) -> None:
    app = build_app(grafana_storage, NOW_MS, host="0.0.0.0")
    query = with_range(load("grafana11_query.json"), NOW_MS - HOUR_MS, NOW_MS)
    async with client(app) as anonymous:
        assert (await anonymous.get("/grafana/")).status_code == 401
        refused = await anonymous.post("/grafana/query", json=query)
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith(PROBLEM)
        assert (await anonymous.post("/grafana/metrics", json={})).status_code == 401
    async with client(app, INGEST_TOKEN) as ingest:
        assert (await ingest.post("/grafana/query", json=query)).status_code == 403
    async with client(app, READ_TOKEN) as reader:
        assert (await reader.get("/grafana/")).status_code == 200
        assert (await reader.post("/grafana/query", json=query)).status_code == 200
        assert (await reader.post("/grafana/tag-keys", json={})).status_code == 200


def _query(target: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"range": RANGE, "targets": [{"refId": "A", **target}], **extra}


BAD_BODIES: list[tuple[str, Any, int, str]] = [
    ("/grafana/query", _query({"target": "nope"}), 400, "'nope'"),
    ("/grafana/query", _query({"target": "requests", "payload": {"pol": "x"}}), 400, "'pol'"),
    (
        "/grafana/query",
        _query({"target": "requests"}, filters=[{"key": "pool", "operator": "=~", "value": "a.*"}]),
        400,
        "'=~'",
    ),
    (
        "/grafana/query",
        _query(
            {"target": "requests"}, adhocFilters=[{"key": "city", "operator": "=", "value": "x"}]
        ),
        400,
        "'city'",
    ),
    ("/grafana/query", _query({"target": "requests", "payload": {"pool": "a b"}}), 400, "pool"),
    ("/grafana/query", _query({"target": "requests", "payload": "{not json"}), 422, "payload"),
    ("/grafana/query", _query({"target": "outcome_rate"}), 400, "outcome"),
    ("/grafana/query", _query({"target": "top_proxies"}), 400, "pool"),
    (
        "/grafana/query",
        _query({"target": "top_proxies", "payload": {"pool": "mobile", "limit": "many"}}),
        400,
        "limit",
    ),
    ("/grafana/query", {"targets": [{"target": "requests"}]}, 422, "range"),
    (
        "/grafana/query",
        {"range": {"from": iso(NOW_MS), "to": iso(NOW_MS - 1)}, "targets": []},
        422,
        "range",
    ),
    ("/grafana/query", {"range": {"from": "yesterday", "to": "now"}}, 422, "range"),
    ("/grafana/query", {"range": RANGE, "targets": "requests"}, 422, "targets"),
    ("/grafana/query", [1, 2], 422, "body"),
    ("/grafana/variable", {"payload": {"target": "cities"}}, 400, "'cities'"),
    ("/grafana/variable", {"payload": {"target": "proxy"}}, 400, "pool"),
    ("/grafana/tag-values", {"key": "city"}, 400, "'city'"),
    ("/grafana/tag-values", {}, 422, "key"),
    ("/grafana/metric-payload-options", {"metric": "requests", "name": "limit"}, 400, "limit"),
    ("/grafana/annotations", {"range": RANGE, "annotation": {"query": "{"}}, 400, "payload"),
]


@pytest.mark.parametrize(("path", "body", "status", "named"), BAD_BODIES)
async def test_bad_bodies_are_4xx_problems_naming_the_fault(
    grafana_storage: Storage, path: str, body: Any, status: int, named: str
) -> None:
    async with client(build_app(grafana_storage, NOW_MS)) as http:
        response = await http.post(path, json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert named in response.json()["detail"]


_RANGE_JSON = f'"range": {{"from": "{RANGE["from"]}", "to": "{RANGE["to"]}"}}'


@pytest.mark.parametrize(
    "raw",
    [
        b"{nope",
        ("{" + _RANGE_JSON + ', "maxDataPoints": Infinity}').encode(),
        ("{" + _RANGE_JSON + ', "intervalMs": NaN}').encode(),
        b'{"range": {"from": 1e400, "to": 2}}',
        ("{" + _RANGE_JSON + ', "targets": [{"target": "requests", "payload": [1]}]}').encode(),
        (
            "{" + _RANGE_JSON + ', "targets": [{"target": "requests", "payload": {"proxy": {}}}]}'
        ).encode(),
        ("{" + _RANGE_JSON + ', "filters": [{"key": "pool", "value": ["a"]}]}').encode(),
    ],
)
async def test_malformed_json_is_a_4xx_problem_never_a_500(
    grafana_storage: Storage, raw: bytes
) -> None:
    async with client(build_app(grafana_storage, NOW_MS)) as http:
        response = await http.post(
            "/grafana/query", content=raw, headers={"content-type": "application/json"}
        )
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"].startswith(PROBLEM)
