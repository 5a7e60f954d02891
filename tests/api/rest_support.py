"""Helpers of the REST v1 tests: seeded history in chDB, the app around it, a client."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from fastapi import APIRouter, FastAPI

from api.app import create_app
from api.settings import ApiSettings, ApiToken
from schemas.events import Outcome
from schemas.wire import WireEvent
from stream_app.storage.client import StorageClient
from stream_app.storage.queries import StorageQueries
from stream_app.storage.settings import StorageSettings
from stream_app.storage.sink import ClickHouseSink
from tests.storage.storage_builders import FlushBuilder, proxy_id

WINDOW_MS = 10_000
MINUTE_MS = 60_000

READ_TOKEN = "read-token-0123456789abcdef"
INGEST_TOKEN = "ingest-token-0123456789abcdef"
ADMIN_TOKEN = "admin-token-0123456789abcdef"

TOKENS = [
    ApiToken.model_validate({"name": "grafana", "token": READ_TOKEN, "roles": ["read"]}),
    ApiToken.model_validate({"name": "fleet", "token": INGEST_TOKEN, "roles": ["ingest"]}),
    ApiToken.model_validate({"name": "ops", "token": ADMIN_TOKEN, "roles": ["admin"]}),
]


def api_settings(*, host: str = "127.0.0.1", **extra: object) -> ApiSettings:
    return ApiSettings.model_validate(
        {
            "host": host,
            "window_s": 10,
            "grace_ms": 5_000,
            "settle_delay_ms": 2_000,
            "staleness_s": 120.0,
            "tokens": TOKENS,
            **extra,
        }
    )


def build_app(
    storage: tuple[StorageSettings, StorageClient],
    now_ms: int,
    *,
    host: str = "127.0.0.1",
    routers: Sequence[APIRouter] = (),
    rules_path: Path | None = None,
) -> FastAPI:
    settings, client = storage
    return create_app(
        api_settings(host=host),
        StorageQueries(client, settings.database),
        routers=routers,
        rules_path=rules_path,
        clock_s=lambda: now_ms / 1000,
    )


def client(app: FastAPI, token: str | None = None) -> httpx.AsyncClient:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api", headers=headers
    )


def write(storage: tuple[StorageSettings, StorageClient], events: Sequence[WireEvent]) -> None:
    settings, client_ = storage
    sink = ClickHouseSink(client_, settings)
    builder = FlushBuilder(source="requests")
    for i in range(0, len(events), 2_000):
        sink.write(builder.flush(events[i : i + 2_000]))


@dataclass(frozen=True)
class History:
    """Seeded events and the clock they were seeded against."""

    now_ms: int
    events: list[WireEvent]
    gap: tuple[int, int]
    """``[start, end)`` without events of residential/eu-west."""
    bad_proxy: str
    """The residential/eu-west proxy failing every request."""


def seeded_history(now_ms: int, *, seed: int = 11) -> History:
    """40 min of traffic for residential and mobile x eu-west and us-east, ending at ``now``.

    residential/eu-west is silent for 5 minutes (a gap) and one of its proxies fails every
    request; mobile/us-east stopped 10 minutes ago (stale).
    """
    rng = random.Random(seed)
    start_ms = now_ms - 40 * MINUTE_MS
    gap = (now_ms - 20 * MINUTE_MS, now_ms - 15 * MINUTE_MS)
    bad = proxy_id("residential", "eu-west", 99)
    events: list[WireEvent] = []
    for i in range(8_000):
        pool = rng.choice(("residential", "mobile"))
        region = rng.choice(("eu-west", "us-east"))
        ts_ms = start_ms + rng.randrange(40 * MINUTE_MS)
        if (pool, region) == ("residential", "eu-west") and gap[0] <= ts_ms < gap[1]:
            continue
        if (pool, region) == ("mobile", "us-east") and ts_ms >= now_ms - 10 * MINUTE_MS:
            continue
        failing = (pool, region) == ("residential", "eu-west") and i % 10 == 0
        ok = not failing and rng.random() < 0.9
        outcome = Outcome.SUCCESS if ok else rng.choice((Outcome.TIMEOUT, Outcome.HTTP_ERROR))
        events.append(
            WireEvent(
                event_id=f"e{i}",
                ts_ms=ts_ms,
                pool=pool,
                region=region,
                outcome=outcome,
                latency_ms=rng.lognormvariate(4.5, 0.8),
                source_host="host-1",
                proxy_id=bad if failing else proxy_id(pool, region, rng.randrange(12)),
                status_code=200 if ok else (503 if outcome is Outcome.HTTP_ERROR else None),
                bytes_in=rng.randrange(5_000),
                bytes_out=rng.randrange(800),
                attempts=1,
            )
        )
    return History(now_ms, events, gap, bad)
