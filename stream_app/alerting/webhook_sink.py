"""Deliver alerts to a generic HTTP webhook, as plain JSON or as a Slack-compatible body.

Two modes (``accepts``):

- ``"events"``: one request per alert state change. ``body_format="json"``: the AlertEvent JSON
  (the same document as on the ``<prefix>.alerts`` topic, fingerprint included);
  ``"slack"``: :func:`~.slack_format.slack_body`.
- ``"notifications"``: one request per notification of the engine's grouping (many pools
  breaching at once are one message). ``"json"``: Alertmanager's webhook payload (version
  "4"), so any Alertmanager webhook receiver works unchanged; ``"slack"``:
  :func:`~.slack_format.slack_notification_body`.

Retries, backoff and the dead letter are the dispatcher's (see :mod:`.dispatcher`,
:mod:`.dead_letter`); this sink only posts once and classifies the answer.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

import httpx
import orjson

from schemas.alerts import AlertEvent
from stream_app.alerting.dispatcher import Accepts, Deliverable
from stream_app.alerting.http_errors import post_json
from stream_app.alerting.slack_format import slack_body, slack_notification_body

BodyFormat = Literal["json", "slack"]


class WebhookSink:
    """POSTs every alert event to one URL (the URL may hold a token: it is never logged)."""

    def __init__(
        self,
        url: str,
        *,
        name: str = "webhook",
        body_format: BodyFormat = "json",
        accepts: Accepts = "events",
        external_url: str = "",
        timeout_s: float = 5.0,
        headers: dict[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._name = name
        self._url = url
        self._target = f"webhook {urlsplit(url).hostname or '?'}"
        self._format: BodyFormat = body_format
        self._accepts: Accepts = accepts
        self._external_url = external_url
        self._timeout_s = timeout_s
        self._headers = dict(headers or {})
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def accepts(self) -> Accepts:
        return self._accepts

    def render(self, item: Deliverable) -> bytes:
        """The request body for ``item`` in the configured format."""
        if isinstance(item, AlertEvent):
            if self._format == "slack":
                return orjson.dumps(slack_body(item))
            return orjson.dumps(item.model_dump(mode="json"))
        if self._format == "slack":
            return orjson.dumps(slack_notification_body(item))
        return orjson.dumps(item.to_webhook_payload(self._name, self._external_url))

    async def start(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._timeout_s, headers=self._headers, transport=self._transport
            )

    async def deliver(self, item: Deliverable) -> None:
        if self._client is None:
            raise RuntimeError("WebhookSink not started")
        await post_json(self._client, self._url, self.render(item), self._target)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
