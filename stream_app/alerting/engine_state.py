"""Saved rule engine state in ClickHouse (table ``alerting_state``, migration 0012).

The fleet-wide rule engine runs on one leader at a time; it saves its snapshot
(:meth:`RuleEngine.snapshot`, JSON) after every evaluated window, and the next leader restores
the latest one (alerts already firing stay firing, no window is evaluated twice).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from stream_app.alerting.errors import DeliveryRejected, DeliveryUnavailable
from stream_app.storage import errors as storage_errors
from stream_app.storage.client import StorageClient
from stream_app.storage.engines import quote_identifier

_COLUMNS = ("name", "saved_at", "window_end_ms", "state")
_LATEST_SQL = (
    "SELECT window_end_ms, state FROM {db:Identifier}.alerting_state "
    "WHERE name = {name:String} ORDER BY window_end_ms DESC, saved_at DESC LIMIT 1"
)


class EngineStateStore:
    """Saves and loads engine snapshots by name (synchronous; call from a thread)."""

    def __init__(self, client: StorageClient, database: str) -> None:
        self._client = client
        self._database = database
        self._table = f"{quote_identifier(database)}.alerting_state"

    def save(self, name: str, window_end_ms: int, state: dict[str, Any]) -> None:
        text = json.dumps(state, separators=(",", ":"), sort_keys=True)
        columns: list[list[Any]] = [[name], [datetime.now(UTC)], [window_end_ms], [text]]
        try:
            self._client.insert_columns(self._table, columns, _COLUMNS)
        except storage_errors.StorageError as exc:
            if exc.retriable:
                raise DeliveryUnavailable(f"saving engine state {name}: {exc}") from exc
            raise DeliveryRejected(f"saving engine state {name}: {exc}") from exc

    def load(self, name: str) -> tuple[int, dict[str, Any]] | None:
        """(window end, snapshot) of the latest save, or None."""
        try:
            rows = self._client.rows(_LATEST_SQL, {"db": self._database, "name": name})
        except storage_errors.StorageError as exc:
            raise DeliveryUnavailable(f"loading engine state {name}: {exc}") from exc
        if not rows:
            return None
        window_end_ms, text = rows[0]
        state: dict[str, Any] = json.loads(text)
        return int(window_end_ms), state
