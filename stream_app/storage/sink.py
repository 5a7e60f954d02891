"""The ClickHouse sink: one idempotent insert per flush, bounded retries with backoff.

:meth:`ClickHouseSink.write` turns a :class:`Flush` into ONE insert into the Null table
``flush_ingest``; its materialized views fan the rows out to ``agg_10s`` (and on through the
rollup cascade), ``proxy_1m`` and ``source_offsets``. The insert carries the flush's
deduplication token (derived from its source offset ranges) with
``deduplicate_blocks_in_dependent_materialized_views``, and every MergeTree table of the schema
keeps a deduplication window, so writing the same flush again changes nothing anywhere, even
when a previous attempt failed half-way through the views.

Retriable failures (:class:`SinkUnavailable`) are retried ``insert_retries`` times with
exponential backoff and jitter, then raised; a refused statement (:class:`SinkRejected`: the
schema is missing, a permission) is raised at once. Refused *data* (:class:`DataRejected`: a value
out of its column's range) is isolated instead: the rows are sorted, the insert is bisected
until the rows at fault stand alone, everything else is stored, and :meth:`ClickHouseSink.write`
returns the refused rows with the reason for the runtime to dead-letter. Each part of a bisected
flush carries a token derived from the flush's (``<token>#<path>``), so a rebuilt flush, bisected
the same way, is deduplicated part by part. The source offset rows travel with every part.
The sink is synchronous (chDB has no async client): from asyncio use :meth:`write_async`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from schemas.wire import WireEvent
from stream_app.core.contributions import Contribution, Flush
from stream_app.storage.client import StorageClient, get_client
from stream_app.storage.engines import quote_identifier
from stream_app.storage.errors import DataRejected, SinkRejected, SinkUnavailable
from stream_app.storage.rows import INGEST_COLUMNS, RAW_COLUMNS, flush_columns, raw_event_columns
from stream_app.storage.settings import StorageSettings
from stream_app.storage.tables import INGEST_TABLE, RAW_TABLE

__all__ = ["ClickHouseSink", "FlushSink", "RawEventSink", "RejectedRow", "SinkStats"]

logger = logging.getLogger(__name__)

_MINUTE_S = 60


@dataclass
class SinkStats:
    """Counters of one sink (read them for metrics; never reset)."""

    flushes_written: int = 0
    rows_written: int = 0
    raw_events_written: int = 0
    retries: int = 0
    gave_up: int = 0
    rejected: int = 0
    undeduplicated_writes: int = 0
    misaligned_windows: int = 0
    rejected_rows: int = 0
    """Rows storage refused for their data, isolated and handed back (dead-lettered)."""
    bisect_inserts: int = 0
    """Inserts of parts of flushes whose data was refused."""


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """One row of a flush that storage refused for its data, and why."""

    contribution: Contribution
    level: Literal["scope", "proxy"]
    reason: str

    def document(self) -> bytes:
        """The row as a JSON document (the dead letter's payload)."""
        c = self.contribution
        acc = c.acc
        doc = {
            "level": self.level,
            "pool": c.scope.pool,
            "region": c.scope.region,
            "proxy_id": c.scope.proxy_id,
            "window_start_ms": c.window_start_ms,
            "window_s": c.window_s,
            "requests": acc.requests,
            "successes": acc.successes,
            "outcomes": acc.outcomes,
            "bytes_in": acc.bytes_in,
            "bytes_out": acc.bytes_out,
            "attempts": acc.attempts,
            "late_events": acc.late_events,
            "latency_sum_ms": _json_float(acc.latency_sum_ms),
        }
        return json.dumps(doc, separators=(",", ":"), default=str).encode()


def _json_float(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _dedup_settings(token: str | None, client: StorageClient) -> dict[str, Any]:
    """Insert settings making a write idempotent by ``token`` (or not deduplicated at all)."""
    # ClickHouse >= 26 has `deduplicate_insert`, which supersedes `insert_deduplicate`; set
    # whichever the server knows, explicitly, so a server profile cannot change the semantics.
    modern = client.knows_setting("deduplicate_insert")
    # In cluster mode the insert goes through a Distributed table: it must not return before
    # the shards hold the rows, or offsets could be committed for rows still queued (and the
    # queued sends would lose the dedup token). A single server ignores it.
    foreground: dict[str, Any] = (
        {"distributed_foreground_insert": 1}
        if client.knows_setting("distributed_foreground_insert")
        else {}
    )
    if token is None:
        # Without a token ClickHouse would deduplicate by content and silently drop a second,
        # legitimately identical block: turn deduplication off instead.
        off: dict[str, Any] = {"insert_deduplicate": 0, "async_insert": 0, **foreground}
        if modern:
            off["deduplicate_insert"] = "disable"
        return off
    on: dict[str, Any] = {
        "insert_deduplicate": 1,
        "insert_deduplication_token": token,
        "deduplicate_blocks_in_dependent_materialized_views": 1,
        "async_insert": 0,
        **foreground,
    }
    if modern:
        on["deduplicate_insert"] = "enable"
    return on


def _scope_key(c: Contribution) -> tuple[str, str, str]:
    return (c.scope.pool, c.scope.region, c.scope.proxy_id or "")


class FlushSink(Protocol):
    """Where flushes go (:class:`ClickHouseSink`; fakes in tests): the one sink protocol of the
    embedded pipeline, the HTTP ingest and the worker."""

    def write(self, flush: Flush) -> Sequence[RejectedRow]:
        """Store one flush idempotently; raise SinkUnavailable when it may be retried; return
        the rows refused for their data (the rest is stored)."""


class RawEventSink(Protocol):
    """Where raw events go when they are kept (``PWM_STORAGE_RAW_EVENTS``): written before the
    flush of their records, under that flush's token, so a rewritten flush rewrites them
    harmlessly (:meth:`ClickHouseSink.write_raw`)."""

    def write_raw(self, events: Sequence[WireEvent], dedup_token: str | None = None) -> int:
        """Store raw events idempotently by ``dedup_token``; SinkUnavailable when retriable."""


class ClickHouseSink:
    """Writes flushes (and, when enabled, raw events) to one database."""

    def __init__(
        self,
        client: StorageClient,
        settings: StorageSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._client = client
        self._settings = settings
        self._sleep = sleep
        self._jitter = jitter
        db = quote_identifier(settings.database)
        self._ingest_table = f"{db}.{INGEST_TABLE}"
        self._raw_table = f"{db}.{RAW_TABLE}"
        self.stats = SinkStats()
        client.prepare_inserts()

    @classmethod
    def from_settings(cls, settings: StorageSettings) -> ClickHouseSink:
        """A sink on the process's client for ``settings.dsn``."""
        return cls(get_client(settings), settings)

    @property
    def raw_events_enabled(self) -> bool:
        return self._settings.raw_events

    def write(self, flush: Flush) -> list[RejectedRow]:
        """Store one flush with one idempotent insert (retried while the store is unavailable).

        Returns the rows storage refused for their data (see the module docstring); everything
        else is stored. Raises :class:`SinkUnavailable` once the retries are spent (retry later
        with the same flush: nothing is double counted) and :class:`SinkRejected` when storage
        refuses the statement itself.
        """
        if flush.empty and not flush.ranges:
            return []
        self._check_windows(flush)
        token = flush.dedup_token() if flush.ranges else None
        rejected: list[RejectedRow] = []
        try:
            self._insert_flush(flush, token)
        except DataRejected as exc:
            if flush.empty:  # only offset rows: nothing to isolate, the statement is at fault
                raise SinkRejected(str(exc)) from exc
            rejected = self._isolate(flush, token, exc)
            self.stats.rejected_rows += len(rejected)
        self.stats.flushes_written += 1
        if token is None:
            self.stats.undeduplicated_writes += 1
        return rejected

    async def write_async(self, flush: Flush) -> list[RejectedRow]:
        """:meth:`write` in a worker thread, for asyncio callers."""
        return await asyncio.to_thread(self.write, flush)

    def _insert_flush(self, flush: Flush, token: str | None) -> None:
        try:
            columns = flush_columns(flush)
        except (AttributeError, TypeError) as exc:
            self.stats.rejected += 1
            raise SinkRejected(f"flush cannot be converted to rows: {exc}") from exc
        rows = self._insert(
            self._ingest_table, columns, INGEST_COLUMNS, _dedup_settings(token, self._client), token
        )
        self.stats.rows_written += rows

    def _isolate(self, flush: Flush, token: str | None, exc: DataRejected) -> list[RejectedRow]:
        """Store every row of ``flush`` storage accepts; return the refused ones."""
        rows: list[tuple[Literal["scope", "proxy"], Contribution]] = [
            *(("scope", c) for c in flush.scopes),
            *(("proxy", c) for c in flush.proxies),
        ]
        rows.sort(key=lambda r: (r[0], r[1].window_start_ms, r[1].window_s, *_scope_key(r[1])))
        logger.warning(
            "storage refused the data of a flush (token %s, %d rows): isolating the rows at "
            "fault: %s",
            token,
            len(rows),
            exc,
        )
        rejected = self._bisect(rows, flush, token, "", exc)
        # The offsets are handled whatever happened to their rows: record them on their own too
        # (the parts that were stored carried them already; this covers a flush refused whole).
        offsets_token = None if token is None else f"{token}#offsets"
        self._insert_flush(Flush(ranges=flush.ranges), offsets_token)
        return rejected

    def _bisect(
        self,
        rows: list[tuple[Literal["scope", "proxy"], Contribution]],
        flush: Flush,
        token: str | None,
        path: str,
        exc: DataRejected,
    ) -> list[RejectedRow]:
        if len(rows) == 1:
            level, contribution = rows[0]
            return [RejectedRow(contribution, level, str(exc))]
        mid = len(rows) // 2
        rejected: list[RejectedRow] = []
        for half, part in (("0", rows[:mid]), ("1", rows[mid:])):
            part_flush = Flush(
                scopes=[c for level, c in part if level == "scope"],
                proxies=[c for level, c in part if level == "proxy"],
                ranges=flush.ranges,
            )
            part_token = None if token is None else f"{token}#{path}{half}"
            self.stats.bisect_inserts += 1
            try:
                self._insert_flush(part_flush, part_token)
            except DataRejected as part_exc:
                rejected.extend(self._bisect(part, flush, token, path + half, part_exc))
        return rejected

    def write_raw(self, events: Sequence[WireEvent], dedup_token: str | None = None) -> int:
        """Store raw events when ``raw_events`` is enabled; returns how many were written.

        Pass the token of the flush (or of the source range) the events came from so a
        re-delivery is deduplicated; without one the events are written as they come.
        """
        if not self._settings.raw_events or not events:
            return 0
        token = f"raw:{dedup_token}" if dedup_token is not None else None
        try:
            columns = raw_event_columns(events)
        except (AttributeError, TypeError) as exc:
            self.stats.rejected += 1
            raise SinkRejected(f"raw events cannot be converted to rows: {exc}") from exc
        written = self._insert(
            self._raw_table, columns, RAW_COLUMNS, _dedup_settings(token, self._client), token
        )
        self.stats.raw_events_written += written
        return written

    def _check_windows(self, flush: Flush) -> None:
        for contribution in (*flush.scopes, *flush.proxies):
            if contribution.window_s < 1 or contribution.window_start_ms < 0:
                self.stats.rejected += 1
                raise SinkRejected(
                    f"invalid window for {contribution.scope}: start "
                    f"{contribution.window_start_ms} ms, {contribution.window_s} s"
                )
        for contribution in flush.scopes:
            if _MINUTE_S % contribution.window_s:
                if self.stats.misaligned_windows == 0:
                    logger.warning(
                        "window_s=%d does not divide 60: the 1m rollup will hold whole windows "
                        "in their first minute (counted in stats.misaligned_windows)",
                        contribution.window_s,
                    )
                self.stats.misaligned_windows += 1
                return

    def _backoff_s(self, attempt: int) -> float:
        s = self._settings
        ceiling = min(s.retry_backoff_max_s, s.retry_backoff_s * 2.0**attempt)
        return ceiling * (0.5 + 0.5 * self._jitter())

    def _insert(
        self,
        table: str,
        columns: list[list[Any]],
        column_names: Sequence[str],
        settings: Mapping[str, Any],
        token: str | None,
    ) -> int:
        attempts = self._settings.insert_retries + 1
        for attempt in range(attempts):
            try:
                return self._client.insert_columns(table, columns, column_names, settings)
            except SinkRejected:
                self.stats.rejected += 1
                raise
            except SinkUnavailable as exc:
                if attempt + 1 >= attempts:
                    self.stats.gave_up += 1
                    logger.warning(
                        "insert into %s (token %s) failed %d times, giving up for now: %s",
                        table,
                        token,
                        attempts,
                        exc,
                    )
                    raise SinkUnavailable(
                        f"insert into {table} failed {attempts} times; last error: {exc}"
                    ) from exc
                delay_s = self._backoff_s(attempt)
                self.stats.retries += 1
                logger.info(
                    "insert into %s (token %s) failed (attempt %d/%d), retrying in %.2f s: %s",
                    table,
                    token,
                    attempt + 1,
                    attempts,
                    delay_s,
                    exc,
                )
                self._sleep(delay_s)
        raise AssertionError("unreachable")  # pragma: no cover
