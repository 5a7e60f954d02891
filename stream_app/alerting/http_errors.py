"""Classify HTTP outcomes of a delivery as success, retriable or poison (shared by HTTP sinks)."""

from __future__ import annotations

import httpx

from stream_app.alerting.errors import DeliveryRejected, DeliveryUnavailable

_RETRIABLE_4XX = frozenset({408, 425, 429})


def raise_for_delivery(response: httpx.Response, target: str) -> None:
    """Raise DeliveryUnavailable for 5xx/408/425/429, DeliveryRejected for other non-2xx answers.

    ``target`` names the destination in messages; pass a host, never a URL with a token in it.
    """
    status = response.status_code
    if 200 <= status < 300:
        return
    detail = response.text[:200].strip()
    message = f"{target} answered HTTP {status}" + (f": {detail}" if detail else "")
    if status >= 500 or status in _RETRIABLE_4XX:
        raise DeliveryUnavailable(message)
    raise DeliveryRejected(message)


async def post_json(client: httpx.AsyncClient, url: str, body: bytes, target: str) -> None:
    """POST a JSON body; translate transport errors and HTTP errors into alerting errors."""
    try:
        response = await client.post(
            url, content=body, headers={"Content-Type": "application/json"}
        )
    except httpx.TimeoutException as exc:
        raise DeliveryUnavailable(f"{target} timed out: {type(exc).__name__}") from exc
    except httpx.TransportError as exc:
        raise DeliveryUnavailable(f"{target} unreachable: {type(exc).__name__}") from exc
    raise_for_delivery(response, target)
