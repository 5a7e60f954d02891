"""The durable inbox of the HTTP ingest (SQLite in WAL mode under the data directory).

An accepted record is committed here, under the next offset of the ingest's own source, before
the sender gets its answer; the pipeline aggregates it under that source and offset, and the
flush that stores it in ClickHouse also stores the offset (``source_offsets``, in the same
insert). So after a crash (SIGKILL included) the inbox holds every acknowledged record that may
not be stored yet: :meth:`IngestInbox.pending_after` hands back those past the stored offset, in
order, and the ones at or below it are deleted (:meth:`IngestInbox.stored_through`, also called
after every successful flush). Nothing acknowledged is lost, nothing stored is counted twice.

A flush may be cut short half-way through its materialized views (SIGKILL during the insert):
part of it stored, its offset not. So before each write the inbox notes the flush's offsets
(:meth:`IngestInbox.begin_flush`); at start-up those records are aggregated again as one flush
first, which carries the same deduplication token (it derives from the offsets): the parts
already stored are recognised, the missing ones written.

The same transaction records the batch identity ``(source_host, batch_id)``: a retried envelope
(its answer was lost, or the server died before answering) finds it and is answered as a
duplicate without being queued again, for ``dedup_ttl_s`` (after which the identity is
forgotten; the producer retries within seconds to minutes, not days).

WAL with ``synchronous=NORMAL`` survives a process crash; ``FULL`` also survives power loss, at
one fsync per record. Thread-safe (one connection behind a lock); ``sqlite3`` errors become
:class:`~stream_app.serve.errors.IngestUnavailable`.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

from stream_app.serve.errors import IngestUnavailable

__all__ = ["IngestInbox"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS records ("
    " offset INTEGER PRIMARY KEY, payload BLOB NOT NULL, accepted_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS batches ("
    " source_host TEXT NOT NULL, batch_id TEXT NOT NULL, offset INTEGER NOT NULL,"
    " accepted_ms INTEGER NOT NULL, PRIMARY KEY (source_host, batch_id)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS batches_by_age ON batches (accepted_ms)",
    "CREATE TABLE IF NOT EXISTS flush_intent ("
    " id INTEGER PRIMARY KEY CHECK (id = 1), first INTEGER NOT NULL, last INTEGER NOT NULL)",
)
_PRUNE_EVERY_S = 60.0
_RETRY_AFTER_S = 5


class IngestInbox:
    """Accepted records not yet known to be stored, and the batch ids seen recently."""

    def __init__(
        self,
        path: Path | str,
        *,
        dedup_ttl_s: float,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self._dedup_ttl_ms = int(dedup_ttl_s * 1000)
        self._clock_ms = clock_ms
        self._lock = threading.Lock()
        self._next_prune_s = 0.0
        target = str(path)
        try:
            if target != ":memory:":
                Path(target).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'FULL' else 'NORMAL'}")
            self._db.execute("PRAGMA busy_timeout=5000")
            for statement in _SCHEMA:
                self._db.execute(statement)
            (last,) = self._db.execute("SELECT COALESCE(MAX(offset), 0) FROM records").fetchone()
        except (sqlite3.Error, OSError) as exc:
            raise IngestUnavailable(
                f"cannot open the ingest inbox {target}: {exc}", retry_after_s=_RETRY_AFTER_S
            ) from exc
        self._last_offset: int = last

    @property
    def last_offset(self) -> int:
        """The highest offset handed out (0: none)."""
        return self._last_offset

    def start_after(self, stored_offset: int) -> None:
        """Continue numbering after ``stored_offset`` (what the store holds) if that is higher:
        offsets never go back, so a flush token is never reused for other records."""
        with self._lock:
            self._last_offset = max(self._last_offset, stored_offset)

    def seen(self, source_host: str, batch_id: str) -> bool:
        """Whether this batch identity was accepted within the deduplication TTL."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM batches WHERE source_host = ? AND batch_id = ?",
                (source_host, batch_id),
            ).fetchone()
        return row is not None

    def accept(
        self, source_host: str, batch_id: str, payload: bytes, then: Callable[[int], None]
    ) -> int | None:
        """Commit one record under the next offset and remember its batch identity; ``None``
        if that identity was already accepted (a duplicate: nothing is stored).

        ``then(offset)`` runs after the commit and before the next record can be accepted, so
        records reach the pipeline in offset order.
        """
        now_ms = self._clock_ms()
        with self._lock:
            offset = self._last_offset + 1
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    cursor = self._db.execute(
                        "INSERT OR IGNORE INTO batches (source_host, batch_id, offset, accepted_ms)"
                        " VALUES (?, ?, ?, ?)",
                        (source_host, batch_id, offset, now_ms),
                    )
                    if cursor.rowcount == 0:
                        self._db.execute("ROLLBACK")
                        return None
                    self._db.execute(
                        "INSERT INTO records (offset, payload, accepted_ms) VALUES (?, ?, ?)",
                        (offset, payload, now_ms),
                    )
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise IngestUnavailable(
                    f"the ingest inbox cannot store the record: {exc}",
                    retry_after_s=_RETRY_AFTER_S,
                ) from exc
            self._last_offset = offset
            then(offset)
        self._maybe_prune(now_ms)
        return offset

    def begin_flush(self, first: int, last: int) -> None:
        """Note that a flush of offsets ``first..last`` is being written (before the write)."""
        with self._lock:
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO flush_intent (id, first, last) VALUES (1, ?, ?)",
                    (first, last),
                )
            except sqlite3.Error as exc:
                raise IngestUnavailable(
                    f"the ingest inbox cannot note a flush: {exc}", retry_after_s=_RETRY_AFTER_S
                ) from exc

    def flush_intent(self) -> tuple[int, int] | None:
        """The offsets of the flush being written when the process stopped, if it had not
        finished (the store may hold part of it)."""
        with self._lock:
            row = self._db.execute("SELECT first, last FROM flush_intent").fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def stored_through(self, offset: int) -> None:
        """Forget the records at or below ``offset``: the store holds them."""
        with self._lock:
            try:
                self._db.execute("DELETE FROM flush_intent WHERE last <= ?", (offset,))
                self._db.execute("DELETE FROM records WHERE offset <= ?", (offset,))
            except sqlite3.Error as exc:  # they would only be replayed and deduplicated
                raise IngestUnavailable(
                    f"the ingest inbox cannot forget stored records: {exc}",
                    retry_after_s=_RETRY_AFTER_S,
                ) from exc

    def pending_after(
        self, offset: int, *, through: int | None = None, chunk: int = 256
    ) -> Iterator[tuple[int, bytes]]:
        """The records above ``offset`` (up to ``through``) in offset order, read in chunks."""
        last = offset
        bound = through if through is not None else 2**63 - 1
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT offset, payload FROM records WHERE offset > ? AND offset <= ?"
                    " ORDER BY offset LIMIT ?",
                    (last, bound, chunk),
                ).fetchall()
            if not rows:
                return
            for row_offset, payload in rows:
                yield int(row_offset), bytes(payload)
            last = int(rows[-1][0])

    def pending_count(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM records").fetchone()
        return int(count)

    def _maybe_prune(self, now_ms: int) -> None:
        if time.monotonic() < self._next_prune_s:
            return
        self._next_prune_s = time.monotonic() + _PRUNE_EVERY_S
        with self._lock:
            try:
                self._db.execute(
                    "DELETE FROM batches WHERE accepted_ms < ?", (now_ms - self._dedup_ttl_ms,)
                )
            except sqlite3.Error:  # pruning is housekeeping: the next round tries again
                return

    def close(self) -> None:
        with self._lock:
            self._db.close()
