"""ClickHouse writers of the alerting area: the alert history sink and the rule audit.

Tables (migrations ``0010_alert_history`` and ``0011_rule_audit`` in :mod:`schemas.migrations`):

- ``alert_history``: one row per delivered alert event. :class:`ClickHouseAlertHistory` is a
  dispatcher sink; each insert carries an ``insert_deduplication_token`` derived from the event's
  canonical JSON, so a retried insert, or the same event produced by two workers, is stored once.
- ``rule_audit``: one row per rule added, changed or removed, with actor, before and after
  (:class:`RuleAuditWriter`); the token is fixed per change batch, so retries never duplicate.

All statements go through :class:`stream_app.storage.client.StorageClient` (server-side
parameters only, the database as an ``Identifier`` parameter). It is synchronous (chDB has no
async client): the async entry points run it in a thread. Storage errors are translated here:
``storage.SinkUnavailable`` -> :class:`~.errors.DeliveryUnavailable` (retriable), anything else ->
:class:`~.errors.DeliveryRejected` (poison).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from datetime import UTC, datetime
from typing import Any

from schemas.alerts import AlertEvent
from stream_app.alerting.dispatcher import Accepts, Deliverable, only_events
from stream_app.alerting.errors import DeliveryRejected, DeliveryUnavailable
from stream_app.alerting.rule_changes import RuleChange, diff_rules
from stream_app.storage import errors as storage_errors
from stream_app.storage.client import StorageClient
from stream_app.storage.engines import quote_identifier
from stream_app.storage.query_alerts import ALERT_COLUMNS, ALERT_TABLE

ALERT_HISTORY_TABLE = ALERT_TABLE
RULE_AUDIT_TABLE = "rule_audit"

_HISTORY_COLUMNS = (*ALERT_COLUMNS, "generator_url")
_AUDIT_COLUMNS = (
    "changed_at",
    "actor",
    "host",
    "rule_id",
    "action",
    "before",
    "after",
    "source_digest",
)

_READ_AUDIT_SQL = (
    "SELECT changed_at, actor, host, rule_id, action, before, after, source_digest "
    "FROM {db:Identifier}.rule_audit "
    "WHERE ({rule_id:Nullable(String)} IS NULL OR rule_id = {rule_id:Nullable(String)}) "
    "ORDER BY changed_at, rule_id, action LIMIT {limit:UInt32}"
)
_AUDITED_STATE_SQL = (
    "SELECT rule_id, argMax(action, changed_at), argMax(after, changed_at), max(changed_at) "
    "FROM {db:Identifier}.rule_audit GROUP BY rule_id ORDER BY rule_id"
)
_READ_HISTORY_SQL = (
    "SELECT recorded_at, fingerprint, status, alertname, rule_id, severity, pool, region, "
    "proxy_id, labels, annotations, starts_at, ends_at, value, threshold, baseline, "
    "window_start, window_end, generator_url "
    "FROM {db:Identifier}.alert_history "
    "WHERE starts_at <= {to_time:DateTime64(3, 'UTC')} "
    "AND (ends_at IS NULL OR ends_at >= {from_time:DateTime64(3, 'UTC')}) "
    "ORDER BY starts_at, fingerprint, status LIMIT {limit:UInt32}"
)


def _translate(exc: storage_errors.StorageError) -> DeliveryUnavailable | DeliveryRejected:
    if exc.retriable:
        return DeliveryUnavailable(str(exc))
    return DeliveryRejected(str(exc))


def _ms(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value / 1000.0, UTC)


def event_token(event: AlertEvent) -> str:
    """The insert deduplication token of an alert event: equal events, equal tokens."""
    canonical = event.model_dump_json(exclude={"fingerprint"})
    return "alert:" + hashlib.sha256(canonical.encode()).hexdigest()


def history_row(event: AlertEvent, recorded_at: datetime) -> list[Any]:
    """The ``alert_history`` row of one event (column order of ``_HISTORY_COLUMNS``)."""
    labels = event.labels
    return [
        recorded_at,
        event.fingerprint,
        event.status.value,
        labels.get("alertname", ""),
        labels.get("rule_id", ""),
        labels.get("severity", ""),
        labels.get("pool", ""),
        labels.get("region", ""),
        labels.get("proxy_id", ""),
        dict(labels),
        dict(event.annotations),
        event.starts_at,
        event.ends_at,
        event.value,
        event.threshold,
        event.baseline,
        _ms(event.window_start_ms),
        _ms(event.window_end_ms),
        event.generator_url,
    ]


class ClickHouseAlertHistory:
    """Dispatcher sink writing each alert event to ``alert_history``."""

    def __init__(self, client: StorageClient, database: str, *, name: str = "history") -> None:
        self._client = client
        self._table = f"{quote_identifier(database)}.{ALERT_HISTORY_TABLE}"
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def accepts(self) -> Accepts:
        return "events"

    async def start(self) -> None:
        return None

    async def deliver(self, item: Deliverable) -> None:
        await asyncio.to_thread(self.write, [only_events(item, self._name)])

    async def close(self) -> None:
        return None

    def write(self, events: Sequence[AlertEvent]) -> int:
        """Insert ``events`` (one insert per event, each with its own dedup token)."""
        written = 0
        now = datetime.now(UTC)
        for event in events:
            row = history_row(event, now)
            columns = [[value] for value in row]
            try:
                written += self._client.insert_columns(
                    self._table,
                    columns,
                    _HISTORY_COLUMNS,
                    settings={"insert_deduplication_token": event_token(event)},
                )
            except storage_errors.StorageError as exc:
                raise _translate(exc) from exc
        return written


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One ``rule_audit`` row as read back."""

    changed_at: datetime
    actor: str
    host: str
    rule_id: str
    action: str
    before: str
    after: str
    source_digest: str


class RuleAuditWriter:
    """Records rule changes in ``rule_audit``, diffing against what the table already says.

    :meth:`record` reads the audited state (the latest row of every rule), diffs the rules now
    in force against it and writes the difference. So the audit converges on the truth whatever
    happened in between: a change made while the service was down is recorded at start-up, a
    batch that failed to write is recorded by the next attempt, and a second worker applying the
    same file finds nothing left to record. Two workers recording the same change at the same
    moment compute the same batch and the same deduplication token (the token covers the audited
    state they started from and the changes), so it is stored once.
    """

    def __init__(self, client: StorageClient, database: str, *, host: str | None = None) -> None:
        self._client = client
        self._database = database
        self._table = f"{quote_identifier(database)}.{RULE_AUDIT_TABLE}"
        self.host = host if host is not None else socket.gethostname()

    def audited_state(self) -> tuple[dict[str, str], datetime | None]:
        """(rule id -> JSON of every rule the audit says exists, time of the latest row)."""
        try:
            rows = self._client.rows(_AUDITED_STATE_SQL, {"db": self._database})
        except storage_errors.StorageError as exc:
            raise _translate(exc) from exc
        state: dict[str, str] = {}
        latest: datetime | None = None
        for rule_id, action, after, changed_at in rows:
            if action != "removed":
                state[rule_id] = after
            latest = changed_at if latest is None or changed_at > latest else latest
        return state, latest

    def record(
        self,
        rules: dict[str, str],
        *,
        actor: str,
        source_digest: str,
        changed_at: datetime | None = None,
    ) -> list[RuleChange]:
        """Write the changes from the audited state to ``rules`` (id -> JSON); returns them."""
        audited, latest = self.audited_state()
        changes = diff_rules(audited, rules)
        if not changes:
            return []
        basis = latest.isoformat() if latest is not None else "-"
        payload = json.dumps([basis, [astuple(c) for c in changes]], separators=(",", ":"))
        token = "audit:" + hashlib.sha256(payload.encode()).hexdigest()
        when = changed_at or datetime.now(UTC)
        rows = [
            [when, actor, self.host, c.rule_id, c.action, c.before, c.after, source_digest]
            for c in changes
        ]
        columns = [list(col) for col in zip(*rows, strict=True)]
        try:
            self._client.insert_columns(
                self._table,
                columns,
                _AUDIT_COLUMNS,
                settings={"insert_deduplication_token": token},
            )
        except storage_errors.StorageError as exc:
            raise _translate(exc) from exc
        return changes

    async def record_async(
        self, rules: dict[str, str], *, actor: str, source_digest: str
    ) -> list[RuleChange]:
        """:meth:`record` in a worker thread."""
        return await asyncio.to_thread(self.record, rules, actor=actor, source_digest=source_digest)

    def read(self, *, rule_id: str | None = None, limit: int = 1000) -> list[AuditRecord]:
        """Audit rows, oldest first (optionally of one rule)."""
        params = {"db": self._database, "rule_id": rule_id, "limit": limit}
        try:
            rows = self._client.rows(_READ_AUDIT_SQL, params)
        except storage_errors.StorageError as exc:
            raise _translate(exc) from exc
        return [AuditRecord(*row) for row in rows]


def read_alert_history(
    client: StorageClient,
    database: str,
    *,
    from_time: datetime,
    to_time: datetime,
    limit: int = 10_000,
) -> list[dict[str, Any]]:
    """Alert rows whose incident overlaps ``[from_time, to_time]``, oldest first."""
    params = {"db": database, "from_time": from_time, "to_time": to_time, "limit": limit}
    try:
        rows = client.rows(_READ_HISTORY_SQL, params)
    except storage_errors.StorageError as exc:
        raise _translate(exc) from exc
    return [dict(zip(_HISTORY_COLUMNS, row, strict=True)) for row in rows]
