"""Dead letter for alert events a sink gave up on: a local JSONL file.

Why a local file and not a ClickHouse table: the dead letter must work exactly when something
else is down, and a webhook outage is often part of a wider one (network, ClickHouse). Appending a
line to a local file needs nothing but the disk. Each line is one JSON object::

    {"dead_lettered_at": "...Z", "sink": "webhook", "attempts": 5,
     "reason": "DeliveryUnavailable: HTTP 503", "event": {...AlertEvent JSON...}}

(a grouped notification has ``"notification"``: its Alertmanager-style webhook payload).

The event carries no secrets (labels are pool/region/rule ids; proxies only as HMAC ids) and the
reason never includes a webhook URL (those often embed tokens). Replay: read the lines, rebuild
``AlertEvent.model_validate(line["event"])`` and publish again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from schemas.alerts import AlertEvent
from stream_app.core.rules.grouping import Notification

logger = logging.getLogger(__name__)


class DeadLetter(Protocol):
    """Where the dispatcher puts events it could not deliver."""

    async def write(
        self, sink: str, event: AlertEvent | Notification, reason: str, attempts: int
    ) -> None:
        """Record one undeliverable item (must not raise for an I/O problem: log and count)."""
        ...


class JsonlDeadLetter:
    """Appends dead-lettered events to a JSONL file (directories created on demand)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.write_failures = 0
        self._lock = threading.Lock()

    async def write(
        self, sink: str, event: AlertEvent | Notification, reason: str, attempts: int
    ) -> None:
        record: dict[str, Any] = {
            "dead_lettered_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "sink": sink,
            "attempts": attempts,
            "reason": reason,
        }
        if isinstance(event, AlertEvent):
            record["event"] = event.model_dump(mode="json")
            what = f"alert {event.fingerprint}"
        else:
            record["notification"] = event.to_webhook_payload(sink, "")
            what = f"notification {event.group_key}"
        line = json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n"
        try:
            await asyncio.to_thread(self._append, line)
        except OSError as exc:
            self.write_failures += 1
            logger.error(
                "dead letter %s not writable (%s); lost %s for sink %s",
                self.path,
                exc,
                what,
                sink,
            )

    def _append(self, line: str) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)

    def read(self) -> list[dict[str, Any]]:
        """All records written so far (for replay tooling and tests)."""
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
