"""The records the worker publishes: dead letters and closed windows.

Dead letter (``<prefix>.requests.dlq``): key = the original record's key; value = the document
of :func:`stream_app.dead_letters.dead_letter_entry` (source topic, partition, offset, reason,
received time, payload in base64) as JSON, with ``payload_truncated: true`` and the original
size when the payload was cut to ``max_payload_bytes``; headers ``pwm-reason``,
``pwm-source-topic``, ``pwm-source-partition``, ``pwm-source-offset``.

Window (``<prefix>.windows``): key = pool; value = the :class:`WindowAggregate` as JSON; headers
``pwm-level`` (``pool_region`` or ``proxy``) and ``pwm-window-end-ms``. A window may be
published more than once (after a restart): the latest record of a (scope, window) is complete.
"""

from __future__ import annotations

import json

from schemas.aggregates import WindowAggregate
from stream_app.dead_letters import dead_letter_entry
from stream_app.worker.publisher import Headers

__all__ = ["PublishedRecord", "dead_letter_record", "window_record"]

PublishedRecord = tuple[bytes | None, bytes, Headers]

_MAX_REASON_HEADER = 512


def dead_letter_record(
    *,
    source: str,
    partition: int,
    offset: int,
    key: bytes | None,
    payload: bytes,
    reason: str,
    now_ms: int,
    max_payload_bytes: int,
) -> PublishedRecord:
    """Key, value and headers of one dead letter."""
    truncated = len(payload) > max_payload_bytes
    entry = dead_letter_entry(
        source=source,
        partition=partition,
        offset=offset,
        payload=payload[:max_payload_bytes] if truncated else payload,
        reason=reason,
        now_ms=now_ms,
    )
    if truncated:
        entry["payload_truncated"] = True
        entry["payload_bytes"] = len(payload)
    value = json.dumps(entry, separators=(",", ":")).encode()
    headers: Headers = (
        ("pwm-reason", reason.encode()[:_MAX_REASON_HEADER]),
        ("pwm-source-topic", source.encode()),
        ("pwm-source-partition", str(partition).encode()),
        ("pwm-source-offset", str(offset).encode()),
    )
    return key, value, headers


def window_record(aggregate: WindowAggregate) -> PublishedRecord:
    """Key, value and headers of one closed window."""
    level = b"pool_region" if aggregate.scope.proxy_id is None else b"proxy"
    headers: Headers = (
        ("pwm-level", level),
        ("pwm-window-end-ms", str(aggregate.window_end_ms).encode()),
    )
    return aggregate.scope.pool.encode(), aggregate.model_dump_json().encode(), headers
