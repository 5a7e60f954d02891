"""Refused events and records of the HTTP ingest, kept in ClickHouse (``ingest_dead_letters``).

One row per refused event (its index in the envelope) or refused record (index -1), with the
reason and the payload as received (cut at ``MAX_PAYLOAD_BYTES``). The insert's deduplication
token covers the record's identity and the refusals, so a retried envelope is kept once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec

from stream_app.serve.intake import Refusal
from stream_app.storage.client import StorageClient
from stream_app.storage.engines import quote_identifier

__all__ = ["MAX_PAYLOAD_BYTES", "IngestDeadLetters"]

MAX_PAYLOAD_BYTES = 64 * 1024
TABLE = "ingest_dead_letters"
_COLUMNS = ("received_at", "source_host", "batch_id", "event_index", "reason", "payload")
_raw_list = msgspec.json.Decoder(list[msgspec.Raw])
_head = msgspec.json.Decoder(dict[str, msgspec.Raw])


def _event_payloads(body: bytes) -> list[bytes] | None:
    """The raw events of an envelope body, or None when it has none."""
    try:
        members = _head.decode(body)
        events = members.get("events")
        return None if events is None else [bytes(e) for e in _raw_list.decode(events)]
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


class IngestDeadLetters:
    """Writes refusals of one body in one idempotent insert."""

    def __init__(self, client: StorageClient, database: str) -> None:
        self._client = client
        self._table = f"{quote_identifier(database)}.{TABLE}"
        self.rows_written = 0

    def keep(
        self, body: bytes, refused: Sequence[Refusal], *, source_host: str, batch_id: str
    ) -> int:
        """Store the refusals of ``body`` (blocking: call it off the event loop)."""
        if not refused:
            return 0
        payloads = _event_payloads(body) if any(r.index is not None for r in refused) else None
        now = datetime.now(tz=UTC)
        columns: list[list[object]] = [[] for _ in _COLUMNS]
        digest = hashlib.sha256(body)
        for refusal in refused:
            index = -1 if refusal.index is None else refusal.index
            payload = body
            if payloads is not None and refusal.index is not None:
                payload = payloads[refusal.index]
            row = (
                now,
                source_host,
                batch_id,
                index,
                refusal.reason,
                payload[:MAX_PAYLOAD_BYTES].decode("utf-8", "replace"),
            )
            for column, value in zip(columns, row, strict=True):
                column.append(value)
            digest.update(f"|{index}".encode())
        token = f"ingest-dlq:{digest.hexdigest()}"
        written = self._client.insert_columns(
            self._table, columns, _COLUMNS, settings={"insert_deduplication_token": token}
        )
        self.rows_written += written
        return written
