"""Auth of the API: named bearer tokens, roles, the loopback read policy, 401 vs 403."""

from __future__ import annotations

import hmac
import logging
import time
from typing import Annotated

import pytest
from fastapi import APIRouter, Depends

from api.app import create_app
from api.auth import Caller, Role, is_loopback, require_role
from api.settings import ApiSettings
from stream_app.storage.client import StorageClient
from stream_app.storage.queries import StorageQueries
from stream_app.storage.settings import StorageSettings
from tests.api.rest_support import (
    ADMIN_TOKEN,
    INGEST_TOKEN,
    READ_TOKEN,
    TOKENS,
    build_app,
    client,
)

Storage = tuple[StorageSettings, StorageClient]
NOW_MS = time.time_ns() // 1_000_000
READS = ("/api/v1/pools", "/api/v1/summary", "/openapi.json", "/docs", "/metrics")


def _ingest_router() -> APIRouter:
    """A router as the hosting process mounts it (like the ingest router)."""
    router = APIRouter(prefix="/api/v1/test-ingest")

    @router.post("")
    def take(caller: Annotated[Caller, Depends(require_role(Role.INGEST))]) -> dict[str, str]:
        return {"actor": caller.actor}

    return router


@pytest.mark.parametrize("path", READS)
async def test_reads_are_open_on_loopback(api_storage: Storage, path: str) -> None:
    async with client(build_app(api_storage, NOW_MS, host="127.0.0.1")) as http:
        response = await http.get(path)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", READS)
async def test_reads_need_a_token_off_loopback(api_storage: Storage, path: str) -> None:
    app = build_app(api_storage, NOW_MS, host="0.0.0.0")
    async with client(app) as http:
        anonymous = await http.get(path)
    async with client(app, READ_TOKEN) as http:
        reader = await http.get(path)
    async with client(app, ADMIN_TOKEN) as http:
        admin = await http.get(path)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert reader.status_code == 200
    assert admin.status_code == 200  # admin implies read


async def test_401_for_a_bad_token_403_for_a_missing_role(api_storage: Storage) -> None:
    app = build_app(api_storage, NOW_MS, host="0.0.0.0", routers=[_ingest_router()])
    async with client(app, "not-a-token-but-long-enough") as http:
        bad = await http.get("/api/v1/pools")
    async with client(app, INGEST_TOKEN) as http:
        wrong_role = await http.get("/api/v1/pools")
        ingest = await http.post("/api/v1/test-ingest")
    async with client(app, READ_TOKEN) as http:
        reader_ingest = await http.post("/api/v1/test-ingest")
    async with client(app, ADMIN_TOKEN) as http:
        admin_ingest = await http.post("/api/v1/test-ingest")
    assert bad.status_code == 401
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]
    assert wrong_role.status_code == 403
    assert wrong_role.headers["content-type"] == "application/problem+json"
    assert 'error="insufficient_scope"' in wrong_role.headers["www-authenticate"]
    assert "fleet" in wrong_role.json()["detail"]
    assert ingest.json() == {"actor": "api:fleet"}
    assert reader_ingest.status_code == 403
    assert admin_ingest.json() == {"actor": "api:ops"}
    async with client(app, READ_TOKEN) as http:
        refusals = (await http.get("/metrics")).text
    assert 'pwm_api_auth_refusals_total{reason="invalid_token"} 1.0' in refusals
    assert 'pwm_api_auth_refusals_total{reason="forbidden"} 2.0' in refusals


async def test_a_wrong_token_is_refused_even_where_reads_are_open(api_storage: Storage) -> None:
    async with client(build_app(api_storage, NOW_MS), "wrong-token-0123456789") as http:
        response = await http.get("/api/v1/pools")
    assert response.status_code == 401


async def test_writes_need_a_token_even_on_loopback(api_storage: Storage) -> None:
    app = build_app(api_storage, NOW_MS, routers=[_ingest_router()])
    async with client(app) as http:
        assert (await http.post("/api/v1/test-ingest")).status_code == 401
        assert (await http.put("/api/v1/rules", content=b"version: 1")).status_code == 401


async def test_health_probes_need_no_token(api_storage: Storage) -> None:
    app = build_app(api_storage, NOW_MS, host="0.0.0.0")
    async with client(app) as http:
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).status_code in (200, 503)


async def test_tokens_are_compared_in_constant_time_against_every_token(
    api_storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    async with client(build_app(api_storage, NOW_MS, host="0.0.0.0"), READ_TOKEN) as http:
        assert (await http.get("/api/v1/pools")).status_code == 200
    # every configured token compared (no early exit), as equal-length digests
    assert len(calls) == len(TOKENS)
    assert all(len(a) == len(b) == 32 for a, b in calls)


async def test_tokens_never_reach_logs_or_answers(
    api_storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = build_app(api_storage, NOW_MS, host="0.0.0.0")
    presented = "wrong-secret-token-0123456789"
    bodies = []
    for token in (READ_TOKEN, INGEST_TOKEN, ADMIN_TOKEN, presented):
        async with client(app, token) as http:
            for path in ("/api/v1/pools", "/api/v1/rules", "/nowhere"):
                bodies.append((await http.get(path)).text)
    text = caplog.text + "".join(bodies) + repr(app.state.authenticator)
    for secret in (READ_TOKEN, INGEST_TOKEN, ADMIN_TOKEN, presented):
        assert secret not in text
    settings = ApiSettings.model_validate({"tokens": TOKENS})
    assert READ_TOKEN not in repr(settings)
    assert READ_TOKEN not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("10.0.0.5", False), ("::", False), ("api.example", False)],
)  # fmt: skip
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_settings_refuse_duplicate_names_and_short_secrets() -> None:
    with pytest.raises(ValueError, match="unique"):
        ApiSettings.model_validate({"tokens": [TOKENS[0], TOKENS[0]]})
    with pytest.raises(ValueError, match="at least 16"):
        ApiSettings.model_validate({"tokens": [{"name": "a", "token": "short", "roles": ["read"]}]})
    with pytest.raises(ValueError, match="roles"):
        ApiSettings.model_validate(
            {"tokens": [{"name": "a", "token": "x" * 20, "roles": ["root"]}]}
        )


async def test_read_open_can_be_forced_either_way(api_storage: Storage) -> None:
    settings, storage_client = api_storage
    queries = StorageQueries(storage_client, settings.database)
    closed = create_app(ApiSettings(host="127.0.0.1", read_open=False), queries)
    async with client(closed) as http:
        assert (await http.get("/api/v1/pools")).status_code == 401
