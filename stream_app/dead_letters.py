"""Dead letters: records that cannot be processed, kept with the reason, never silently dropped.

The Faust worker sends them to ``<prefix>.requests.dlq``; the embedded runner appends them to a
JSON-lines file under its data directory. Either way each entry carries the source, partition and
offset of the record, the reason (naming the field) and the raw payload (base64).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path
from typing import Protocol


class DeadLetters(Protocol):
    """Where poison records go."""

    def put(self, *, source: str, partition: int, offset: int, payload: bytes, reason: str) -> None:
        """Keep one poison record with its reason."""


def dead_letter_entry(
    *, source: str, partition: int, offset: int, payload: bytes, reason: str, now_ms: int
) -> dict[str, object]:
    """The dead-letter document, the same on every runtime."""
    return {
        "source": source,
        "partition": partition,
        "offset": offset,
        "reason": reason,
        "received_ms": now_ms,
        "payload_b64": base64.b64encode(payload).decode("ascii"),
    }


class FileDeadLetters:
    """Append-only JSON-lines dead-letter file (embedded mode), rotated at ``max_bytes``."""

    def __init__(self, path: Path, *, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self.count = 0
        path.parent.mkdir(parents=True, exist_ok=True)

    def put(self, *, source: str, partition: int, offset: int, payload: bytes, reason: str) -> None:
        entry = dead_letter_entry(
            source=source,
            partition=partition,
            offset=offset,
            payload=payload,
            reason=reason,
            now_ms=time.time_ns() // 1_000_000,
        )
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        with self._lock:
            if self.path.exists() and self.path.stat().st_size + len(line) > self._max_bytes:
                self.path.replace(self.path.with_suffix(self.path.suffix + ".1"))
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)
            self.count += 1
