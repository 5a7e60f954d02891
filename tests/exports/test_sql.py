"""POST /api/v1/sql: one read-only SELECT over the metrics database, admin only."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.rest_support import ADMIN_TOKEN, READ_TOKEN, History, client
from tests.exports.conftest import Storage
from tests.exports.test_export_http import _app


async def _post(storage: Storage, query: str, token: str = ADMIN_TOKEN, **extra: object) -> Any:
    async with client(_app(storage, **extra), token) as http:
        return await http.post("/api/v1/sql", json={"query": query, "format": "ndjson"})


async def test_a_select_streams_with_its_trailer(export_storage: Storage, history: History) -> None:
    db = export_storage[0].database
    response = await _post(
        export_storage,
        f"SELECT pool, sum(requests) AS requests FROM {db}.agg_10s GROUP BY pool ORDER BY pool",
    )
    assert response.status_code == 200, response.text
    *rows, last = [json.loads(line) for line in response.text.splitlines()]
    assert [r["pool"] for r in rows] == ["mobile", "residential"]
    assert sum(int(r["requests"]) for r in rows) == len(history.events)
    assert last == {"export_complete": {"rows": None}}


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("INSERT INTO {db}.agg_10s SELECT * FROM {db}.agg_10s", "only one SELECT"),
        ("DROP TABLE {db}.agg_10s", "only one SELECT"),
        ("SET readonly = 0", "only one SELECT"),
        ("SELECT 1; DROP TABLE {db}.agg_10s", "multiple statements"),
        ("SELECT name FROM system.tables", "outside the metrics database"),
        (
            "SELECT count() FROM {db}.agg_10s WHERE pool IN (SELECT name FROM system.users)",
            "outside the metrics database",
        ),
        ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "table function file()"),
        ("SELECT * FROM url('http://127.0.0.1:1/x', 'LineAsString')", "table function url()"),
        ("SELECT * FROM merge('{db}', '.*')", "table function merge()"),
        ("SELECT file('/etc/passwd')", "function file()"),
        ("SELECT 1 SETTINGS readonly = 0", "SETTINGS"),
        ("SELECT 1 INTO OUTFILE '/tmp/pwm-x'", "OUTFILE"),
    ],
)
async def test_refused_queries_say_why(export_storage: Storage, query: str, why: str) -> None:
    db = export_storage[0].database
    response = await _post(export_storage, query.replace("{db}", db))
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert why in response.json()["detail"]


async def test_other_databases_are_refused(export_storage: Storage) -> None:
    client_ = export_storage[1]
    client_.command("CREATE DATABASE IF NOT EXISTS pwm_other")
    client_.command("CREATE TABLE IF NOT EXISTS pwm_other.t (x UInt8) ENGINE = Memory")
    response = await _post(export_storage, "SELECT * FROM pwm_other.t")
    assert response.status_code == 400
    assert "pwm_other.t is outside the metrics database" in response.json()["detail"]


async def test_only_admin_tokens(export_storage: Storage) -> None:
    read = await _post(export_storage, "SELECT 1", READ_TOKEN)
    assert read.status_code == 403
    async with client(_app(export_storage)) as http:  # loopback: reads open, admin is not
        anonymous = await http.post("/api/v1/sql", json={"query": "SELECT 1"})
    assert anonymous.status_code == 401


async def test_a_limit_reached_mid_stream_is_visible(export_storage: Storage) -> None:
    response = await _post(
        export_storage, "SELECT number FROM numbers(1000000)", sql_max_result_rows=10
    )
    assert response.status_code == 200
    last = json.loads(response.text.splitlines()[-1])
    assert last == {"export_error": "the query failed: TOO_MANY_ROWS_OR_BYTES"}


async def test_csv_has_its_header_then_rows(export_storage: Storage, history: History) -> None:
    db = export_storage[0].database
    async with client(_app(export_storage), ADMIN_TOKEN) as http:
        response = await http.post(
            "/api/v1/sql",
            json={
                "query": f"SELECT region AS `the region`, count() AS n FROM {db}.agg_1m "
                "GROUP BY region ORDER BY region",
                "format": "csv",
            },
        )
    assert response.status_code == 200, response.text
    assert response.text.splitlines() == [
        '"the region","n"',
        *[f'"{r}",{n}' for r, n in _rows_per_region(export_storage)],
        "# export-complete",
    ]


def _rows_per_region(storage: Storage) -> list[tuple[str, int]]:
    settings, storage_client = storage
    rows = storage_client.rows(
        f"SELECT region, count() FROM {settings.database}.agg_1m GROUP BY region ORDER BY region"
    )
    return [(str(r), int(n)) for r, n in rows]
