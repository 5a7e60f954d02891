"""Alertmanager harness: an alert posted to the real Alertmanager reaches a loopback webhook."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiohttp import web

from tests.support.alertmanager import AlertmanagerFactory

pytestmark = pytest.mark.alertmanager

DELIVERY_TIMEOUT_S = 20.0


class Receiver:
    """A webhook endpoint on 127.0.0.1 that records each JSON payload."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        payload = await request.json()
        async with self._changed:
            self.payloads.append(payload)
            self._changed.notify_all()
        return web.Response(status=200)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for(self, status: str) -> dict[str, Any]:
        """The first payload with ``status`` (firing/resolved), waiting at most the timeout."""

        def found() -> dict[str, Any] | None:
            return next((p for p in self.payloads if p["status"] == status), None)

        async with asyncio.timeout(DELIVERY_TIMEOUT_S), self._changed:
            await self._changed.wait_for(lambda: found() is not None)
            payload = found()
        assert payload is not None
        return payload


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    await rec.start()
    yield rec
    await rec.stop()


def alert(ends_at: datetime, pool: str) -> list[dict[str, Any]]:
    return [
        {
            "labels": {"alertname": "PoolErrorRateHigh", "pool": pool, "severity": "critical"},
            "annotations": {"summary": f"error rate high in {pool}"},
            "startsAt": (ends_at - timedelta(minutes=10)).isoformat(),
            "endsAt": ends_at.isoformat(),
            "generatorURL": "http://127.0.0.1/rules/pool-error-rate",
        }
    ]


async def test_posted_alert_is_listed_and_delivered_then_resolved(
    alertmanager_factory: AlertmanagerFactory, receiver: Receiver
) -> None:
    am = await asyncio.to_thread(alertmanager_factory, receiver.url)
    now = datetime.now(UTC)
    async with httpx.AsyncClient(base_url=am.url, timeout=10.0) as client:
        posted = await client.post("/api/v2/alerts", json=alert(now + timedelta(hours=1), "eu-1"))
        assert posted.status_code == 200, posted.text

        listed = (await client.get("/api/v2/alerts")).json()
        assert [a["labels"]["pool"] for a in listed] == ["eu-1"]
        assert listed[0]["status"]["state"] == "active"

        firing = await receiver.wait_for("firing")
        assert firing["version"] == "4"
        assert firing["receiver"] == "webhook"
        assert [a["labels"]["alertname"] for a in firing["alerts"]] == ["PoolErrorRateHigh"]
        assert firing["alerts"][0]["annotations"]["summary"] == "error rate high in eu-1"

        # Resolve: re-post with endsAt in the past.
        resolved_post = await client.post(
            "/api/v2/alerts", json=alert(now - timedelta(seconds=1), "eu-1")
        )
        assert resolved_post.status_code == 200
        resolved = await receiver.wait_for("resolved")
    assert resolved["alerts"][0]["labels"]["pool"] == "eu-1"
    assert resolved["alerts"][0]["status"] == "resolved"
    assert json.dumps(resolved)  # plain JSON all the way


async def test_alertmanager_rejects_an_invalid_alert(
    alertmanager_factory: AlertmanagerFactory, receiver: Receiver
) -> None:
    am = await asyncio.to_thread(alertmanager_factory, receiver.url)
    async with httpx.AsyncClient(base_url=am.url, timeout=10.0) as client:
        bad = await client.post("/api/v2/alerts", json=[{"labels": {}}])
        listed = (await client.get("/api/v2/alerts")).json()
    assert bad.status_code == 400
    assert listed == []
