"""Hostile input never makes the API fail: every parameter of every route gets injection
strings, oversized and odd unicode values (always a 4xx or a 2xx, never a 5xx, and the stored
data is untouched), and schemathesis, driven by the OpenAPI schema, finds no server error and no
answer that differs from the document (status, content type, body)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from stream_app.storage.client import StorageClient
from stream_app.storage.settings import StorageSettings
from tests.api.rest_support import ADMIN_TOKEN, build_app, client, seeded_history, write

Storage = tuple[StorageSettings, StorageClient]
NOW_MS = time.time_ns() // 1_000_000 // 10_000 * 10_000
DEMO_RULES = Path(__file__).resolve().parents[2] / "config" / "rules.demo.yaml"

HOSTILE: tuple[str, ...] = (
    "' OR '1'='1",
    "mobile' OR 1=1 --",
    "x'); DROP TABLE agg_10s; --",
    "{pool:String}",
    "mobile\\' UNION SELECT * FROM system.users --",
    "`; SYSTEM SHUTDOWN",
    "a" * 10_000,
    "1" * 400,
    "-1",
    "1e309",
    "NaN",
    "\u0000",
    "mobile\u0000",
    "\u202emobile",
    "m\u00f6bile",
    "\U0001f600" * 50,
    "\ufeff",
    "%00",
    "../../etc/passwd",
    "9999-99-99T99:99:99Z",
    "-99999999999999999999",
    "",
    " ",
    "\r\nX-Injected: 1",
)


@pytest.fixture
def app(api_storage: Storage, tmp_path: Path) -> FastAPI:
    write(api_storage, seeded_history(NOW_MS).events[:2_000])
    rules = tmp_path / "rules.yaml"
    shutil.copyfile(DEMO_RULES, rules)
    return build_app(api_storage, NOW_MS, rules_path=rules)


def _get_operations(app: FastAPI) -> list[tuple[str, list[str]]]:
    """(path, query parameter names) of every GET route in the OpenAPI document."""
    out = []
    for path, item in app.openapi()["paths"].items():
        if "get" in item:
            names = [p["name"] for p in item["get"].get("parameters", []) if p["in"] == "query"]
            out.append((path, names))
    return out


async def test_hostile_values_in_every_parameter_are_4xx(
    app: FastAPI, api_storage: Storage
) -> None:
    operations = _get_operations(app)
    assert {"/api/v1/series", "/api/v1/summary", "/api/v1/proxies"} <= {p for p, _ in operations}
    base: dict[str, dict[str, str]] = {
        "/api/v1/series": {"metric": "requests"},
        "/api/v1/proxies": {"pool": "mobile"},
    }
    tried = 0
    async with client(app, ADMIN_TOKEN) as http:
        for path, names in operations:
            for name in names:
                for value in HOSTILE:
                    params: dict[str, Any] = {**base.get(path, {}), name: value}
                    response = await http.get(path, params=params)
                    tried += 1
                    assert response.status_code < 500, (path, name, value, response.text)
                    if response.status_code >= 400:
                        assert response.headers["content-type"] == "application/problem+json"
    assert tried > 200
    settings, storage_client = api_storage
    tables = storage_client.rows(
        "SELECT name FROM system.tables WHERE database = {db:String}", {"db": settings.database}
    )
    assert {"agg_10s", "agg_1m", "proxy_1m", "alert_history"} <= {t[0] for t in tables}
    assert storage_client.rows(f"SELECT count() FROM {settings.database}.agg_10s")[0][0] > 0


async def test_a_value_is_matched_exactly_never_interpreted(app: FastAPI) -> None:
    async with client(app) as http:
        injected = await http.get("/api/v1/summary", params={"pool": "mobile' OR 1=1 --"})
        exact = await http.get("/api/v1/summary", params={"pool": "mobile"})
    assert injected.status_code == 422  # not a pool name at all
    assert {s["pool"] for s in exact.json()["scopes"]} == {"mobile"}


def test_schemathesis_finds_no_server_error(app: FastAPI) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    statuses: list[int] = []
    for operation in operations:

        @hypothesis.settings(
            max_examples=12,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis.given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            response = case.call_and_validate(
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                # every default check (no server error, status codes, content types and bodies
                # as documented) except: reads are open on loopback (ignored_auth), and a
                # schema-valid request may still be refused for its meaning, e.g. start after
                # end or an invalid rule (positive_data_acceptance)
                excluded_checks=[ignored_auth, positive_data_acceptance],
            )
            statuses.append(response.status_code)

        check()
    assert len(statuses) >= 5 * len(operations)
    assert any(200 <= s < 300 for s in statuses)
    assert any(400 <= s < 500 for s in statuses)
