"""A local on-disk FIFO queue for envelopes the broker could not take (SQLite in WAL mode).

Each envelope is one row, committed in its own transaction before :meth:`Spool.append` returns:
a process killed at any point after that finds it again when the spool is reopened (WAL with
``synchronous=NORMAL`` survives a process crash; ``FULL`` also survives power loss, at one fsync
per append). Rows are keyed by a caller-supplied sequence number, so replay order is the order
the envelopes were first sent, even when an in-flight envelope fails after later ones were
spooled. The spool is bounded by rows and by payload bytes: beyond either bound the OLDEST rows
are deleted and counted in :attr:`Spool.dropped_rows` / :attr:`Spool.dropped_events`.

``path=":memory:"`` gives the same queue without durability (nothing survives a restart).
All methods are thread-safe (one connection behind a lock). ``sqlite3`` errors are translated
to :class:`producer.errors.SpoolError` (retriable).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from producer.errors import SpoolError

__all__ = ["Spool", "SpoolEntry"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS envelopes (
    seq INTEGER PRIMARY KEY,
    pool TEXT NOT NULL,
    payload BLOB NOT NULL,
    event_count INTEGER NOT NULL,
    created_ms INTEGER NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    """One spooled envelope."""

    seq: int
    pool: str
    payload: bytes
    event_count: int
    created_ms: int


class Spool:
    """A bounded, crash-safe FIFO of envelopes."""

    def __init__(
        self,
        path: Path | str,
        *,
        max_bytes: int,
        max_rows: int,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
    ) -> None:
        if max_bytes < 1 or max_rows < 1:
            raise ValueError("spool bounds must be positive")
        self._max_bytes = max_bytes
        self._max_rows = max_rows
        self._lock = threading.Lock()
        self.dropped_rows = 0
        self.dropped_events = 0
        target = str(path)
        try:
            if target != ":memory:":
                Path(target).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'FULL' else 'NORMAL'}")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.execute(_SCHEMA)
            rows, size, events, last = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0), "
                "COALESCE(SUM(event_count), 0), COALESCE(MAX(seq), 0) FROM envelopes"
            ).fetchone()
        except (sqlite3.Error, OSError) as exc:
            raise SpoolError(f"cannot open spool {target}: {exc}") from exc
        self._rows: int = rows
        self._bytes: int = size
        self._events: int = events
        self._last_seq: int = last

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def size_bytes(self) -> int:
        """Payload bytes stored."""
        return self._bytes

    @property
    def events(self) -> int:
        return self._events

    @property
    def last_seq(self) -> int:
        """The highest sequence number ever stored (0 for a new spool); callers continue after
        it so that a reopened spool keeps its order."""
        return self._last_seq

    def append(self, seq: int, pool: str, payload: bytes, event_count: int) -> bool:
        """Store one envelope durably; ``False`` if it alone exceeds ``max_bytes`` (then it is
        counted as dropped instead). Older rows beyond the bounds are dropped and counted."""
        if len(payload) > self._max_bytes:
            with self._lock:
                self.dropped_rows += 1
                self.dropped_events += event_count
            return False
        now_ms = time.time_ns() // 1_000_000
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.execute(
                        "INSERT INTO envelopes (seq, pool, payload, event_count, created_ms) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (seq, pool, payload, event_count, now_ms),
                    )
                    dropped = self._evict(self._rows + 1, self._bytes + len(payload))
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise SpoolError(f"cannot append to the spool: {exc}") from exc
            self._rows += 1 - dropped[0]
            self._bytes += len(payload) - dropped[1]
            self._events += event_count - dropped[2]
            self._last_seq = max(self._last_seq, seq)
            self.dropped_rows += dropped[0]
            self.dropped_events += dropped[2]
        return True

    def _evict(self, rows: int, size: int) -> tuple[int, int, int]:
        """Delete the oldest rows until within bounds (inside the caller's transaction)."""
        gone_rows = gone_bytes = gone_events = 0
        while rows - gone_rows > self._max_rows or size - gone_bytes > self._max_bytes:
            over_rows = rows - gone_rows - self._max_rows
            chunk = max(1, min(over_rows, 256)) if over_rows > 0 else 16
            victims = self._db.execute(
                "SELECT seq, LENGTH(payload), event_count FROM envelopes ORDER BY seq LIMIT ?",
                (chunk,),
            ).fetchall()
            for seq, length, events in victims:
                if rows - gone_rows <= self._max_rows and size - gone_bytes <= self._max_bytes:
                    break
                self._db.execute("DELETE FROM envelopes WHERE seq = ?", (seq,))
                gone_rows += 1
                gone_bytes += length
                gone_events += events
        return gone_rows, gone_bytes, gone_events

    def peek(self, limit: int) -> list[SpoolEntry]:
        """The oldest ``limit`` envelopes, oldest first (they stay until :meth:`remove`)."""
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT seq, pool, payload, event_count, created_ms FROM envelopes "
                    "ORDER BY seq LIMIT ?",
                    (limit,),
                ).fetchall()
            except sqlite3.Error as exc:
                raise SpoolError(f"cannot read the spool: {exc}") from exc
        return [SpoolEntry(seq, pool, bytes(payload), n, ms) for seq, pool, payload, n, ms in rows]

    def remove(self, seqs: Sequence[int]) -> None:
        """Delete delivered envelopes (unknown sequence numbers are ignored)."""
        if not seqs:
            return
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    wanted = json.dumps([int(s) for s in seqs])
                    gone = self._db.execute(
                        "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0), "
                        "COALESCE(SUM(event_count), 0) FROM envelopes "
                        "WHERE seq IN (SELECT value FROM json_each(?))",
                        (wanted,),
                    ).fetchone()
                    self._db.execute(
                        "DELETE FROM envelopes WHERE seq IN (SELECT value FROM json_each(?))",
                        (wanted,),
                    )
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise SpoolError(f"cannot remove delivered rows from the spool: {exc}") from exc
            self._rows -= gone[0]
            self._bytes -= gone[1]
            self._events -= gone[2]

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error as exc:
                raise SpoolError(f"cannot close the spool: {exc}") from exc
