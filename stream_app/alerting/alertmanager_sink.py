"""Forward alert events to Alertmanager (API v2), with a periodic re-send of firing alerts.

``POST {base_url}/api/v2/alerts`` with ``[{labels, annotations, startsAt, endsAt?,
generatorURL}]``. A firing alert is posted without ``endsAt`` (Alertmanager then keeps it for its
``resolve_timeout``); a resolved one with its ``endsAt`` (in the past), which resolves it. Because
Alertmanager forgets alerts that are not re-sent, the sink re-posts every firing alert it knows of
every ``resend_interval_s`` (Prometheus does the same); keep that well below Alertmanager's
``resolve_timeout`` (5 min by default). Alertmanager deduplicates by label fingerprint, so a
re-send or the same alert posted by two workers is one alert there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from urllib.parse import urlsplit

import httpx

from schemas.alerts import AlertEvent, AlertStatus
from stream_app.alerting.dispatcher import Accepts, Deliverable, only_events
from stream_app.alerting.errors import AlertingError
from stream_app.alerting.http_errors import post_json
from stream_app.alerting.metrics import AlertingMetrics

logger = logging.getLogger(__name__)


class AlertmanagerSink:
    """Delivers to one Alertmanager (for an HA pair, configure one sink per instance)."""

    def __init__(
        self,
        base_url: str,
        metrics: AlertingMetrics,
        *,
        name: str = "alertmanager",
        timeout_s: float = 5.0,
        resend_interval_s: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if resend_interval_s <= 0:
            raise ValueError("resend_interval_s must be > 0")
        self._name = name
        self._url = base_url.rstrip("/") + "/api/v2/alerts"
        self._target = f"alertmanager {urlsplit(base_url).netloc}"
        self._timeout_s = timeout_s
        self._resend_interval_s = resend_interval_s
        self._transport = transport
        self._metrics = metrics
        self._client: httpx.AsyncClient | None = None
        self._firing: dict[str, AlertEvent] = {}
        self._resend_task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def accepts(self) -> Accepts:
        return "events"

    @property
    def firing(self) -> dict[str, AlertEvent]:
        """Firing alerts by fingerprint, as last delivered (what the re-send posts)."""
        return dict(self._firing)

    async def start(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout_s, transport=self._transport)
        if self._resend_task is None:
            self._resend_task = asyncio.create_task(self._resend_loop(), name="alertmanager-resend")

    async def deliver(self, item: Deliverable) -> None:
        event = only_events(item, self._name)
        # Book-keeping first: a firing alert whose post fails now still reaches Alertmanager with
        # the next re-send; a resolved one that fails is at least no longer re-sent, so
        # Alertmanager resolves it after its resolve_timeout.
        if event.status is AlertStatus.FIRING:
            self._firing[event.fingerprint] = event
        else:
            self._firing.pop(event.fingerprint, None)
        await self._post([event])

    async def resend_firing(self) -> int:
        """Post every firing alert once more; returns how many were sent."""
        events = list(self._firing.values())
        if not events:
            return 0
        await self._post(events)
        self._metrics.resent.inc(len(events))
        return len(events)

    async def close(self) -> None:
        if self._resend_task is not None:
            self._resend_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._resend_task
            self._resend_task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _post(self, events: list[AlertEvent]) -> None:
        if self._client is None:
            raise RuntimeError("AlertmanagerSink not started")
        body = json.dumps([e.to_alertmanager() for e in events], separators=(",", ":"))
        await post_json(self._client, self._url, body.encode(), self._target)

    async def _resend_loop(self) -> None:
        failures = 0
        while True:
            await asyncio.sleep(self._resend_interval_s)
            try:
                await self.resend_firing()
                failures = 0
            except AlertingError as exc:
                failures += 1
                if failures == 1 or failures % 10 == 0:
                    logger.warning(
                        "re-send of %d firing alert(s) to %s failed (%d in a row): %s",
                        len(self._firing),
                        self._target,
                        failures,
                        exc,
                    )
