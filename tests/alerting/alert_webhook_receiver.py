"""A real HTTP receiver on loopback for webhook deliveries (ours and Alertmanager's).

It answers the first ``fail_first`` requests with ``fail_status`` and then 200, records every
request body (parsed JSON) and lets a test wait for a condition with a timeout.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web


class WebhookReceiver:
    def __init__(self, *, fail_first: int = 0, fail_status: int = 503) -> None:
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.attempts = 0
        self.bodies: list[Any] = []
        self.content_types: list[str] = []
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        async with self._changed:
            self.attempts += 1
            failing = self.attempts <= self.fail_first
            if not failing:
                self.bodies.append(json.loads(raw))
                self.content_types.append(request.headers.get("Content-Type", ""))
            self._changed.notify_all()
        if failing:
            return web.Response(status=self.fail_status, text="try later")
        return web.Response(status=200, text="ok")

    async def wait_for(
        self, predicate: Callable[[WebhookReceiver], bool], timeout_s: float
    ) -> None:
        """Wait until ``predicate(self)`` holds; TimeoutError after ``timeout_s``."""
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(lambda: predicate(self))
