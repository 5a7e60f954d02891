"""The producer's bounded in-memory buffer and its counters, behind one short lock.

``emit()`` threads append records; the flush thread takes out the batches that are due. The lock
is held only for in-memory bookkeeping, never across I/O. A pool's batch is sealed the moment it
holds ``batch_max_events`` records (the next record of that pool starts a new batch) and is due
then, or when its first record is ``batch_max_age_s`` old, or at once when a flush or close asks
for everything. The bound counts every event not yet delivered or dropped, including those the
flush thread holds as encoded envelopes, so memory stays bounded while a transport is down.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from producer.envelope import Record
from producer.stats import ProducerStats

__all__ = ["Batch", "EventBuffer"]

Batch = tuple[str, list[Record]]
"""A pool and its records, oldest first."""


class _PoolBatch:
    __slots__ = ("first_mono", "records")

    def __init__(self, first_mono: float) -> None:
        self.first_mono = first_mono
        self.records: list[Record] = []


class EventBuffer:
    """Per-pool batches plus every counter of :class:`producer.stats.ProducerStats`."""

    def __init__(
        self,
        *,
        max_events: int,
        batch_max_events: int,
        batch_max_age_s: float,
        wake: Callable[[], None],
    ) -> None:
        self._max_events = max_events
        self._batch_max = batch_max_events
        self._age_s = batch_max_age_s
        self._wake = wake
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._pools: dict[str, _PoolBatch] = {}
        self._sealed: list[Batch] = []
        self._flusher_idle = True
        self._closed = False
        self.stop_deadline = math.inf
        self._flush_requested = 0
        self._flush_taken = 0
        self._flush_done = 0
        self._emitted = 0
        self._buffered = 0
        self._sent_events = 0
        self._sent_batches = 0
        self._dropped_full = 0
        self._dropped_send = 0
        self._dropped_closed = 0
        self._rejected = 0
        self._rejected_privacy = 0
        self._rejected_by_field: dict[str, int] = {}
        self._send_errors = 0
        self._retries = 0

    # ------------------------------------------------------------------ emit() side

    def add(self, pool: str, record: Record) -> bool:
        """Buffer one valid record; ``False`` (and counted) if full or closed."""
        wake = False
        with self._lock:
            if self._closed:
                self._dropped_closed += 1
                return False
            self._emitted += 1
            if self._buffered >= self._max_events:
                self._dropped_full += 1
                return False
            self._buffered += 1
            batch = self._pools.get(pool)
            if batch is None:
                batch = self._pools[pool] = _PoolBatch(time.monotonic())
                # A sleeping flush thread already has a deadline no later than this new batch's,
                # unless it sleeps without one: then it must be woken to start the age clock.
                wake = self._flusher_idle
                self._flusher_idle = False
            records = batch.records
            records.append(record)
            if len(records) == self._batch_max:
                self._sealed.append((pool, records))
                del self._pools[pool]
                wake = True
        if wake:
            self._wake()
        return True

    def reject(self, field: str, *, privacy: bool) -> None:
        with self._lock:
            self._rejected += 1
            if privacy:
                self._rejected_privacy += 1
            self._rejected_by_field[field] = self._rejected_by_field.get(field, 0) + 1

    # ------------------------------------------------------------------ flush-thread side

    def take_due(self, now: float) -> tuple[list[Batch], float, bool]:
        """Remove the batches that are due: ``(batches, next deadline, closing)``."""
        due: list[Batch] = []
        next_due = math.inf
        with self._lock:
            closing = self._closed
            take_all = closing or self._flush_requested > self._flush_taken
            if take_all:
                self._flush_taken = self._flush_requested
            if self._sealed:
                due, self._sealed = self._sealed, []
            for pool, batch in list(self._pools.items()):
                deadline = batch.first_mono + self._age_s
                if take_all or deadline <= now:
                    due.append((pool, batch.records))
                    del self._pools[pool]
                else:
                    next_due = min(next_due, deadline)
            # With no batch open the thread may sleep without a deadline; add() wakes it.
            self._flusher_idle = not self._pools
        return due, next_due, closing

    def holds_batches(self) -> bool:
        with self._lock:
            return bool(self._pools or self._sealed)

    def delivered(self, event_count: int, *, retried: bool) -> None:
        with self._lock:
            self._sent_events += event_count
            self._sent_batches += 1
            self._buffered -= event_count
            if retried:
                self._retries += 1

    def send_failed(self, event_count: int, *, dropped: bool) -> None:
        with self._lock:
            self._send_errors += 1
            if dropped:
                self._dropped_send += event_count
                self._buffered -= event_count

    def drop(self, event_count: int) -> None:
        """Events the flush thread gives up on (unencodable, or unsent at the close deadline)."""
        with self._lock:
            self._dropped_send += event_count
            self._buffered -= event_count

    def drop_open_batches(self) -> int:
        """Drop every batch still in the buffer; returns the number of events dropped."""
        with self._lock:
            count = sum(len(b.records) for b in self._pools.values())
            count += sum(len(records) for _, records in self._sealed)
            self._pools.clear()
            self._sealed.clear()
            self._dropped_send += count
            self._buffered -= count
        return count

    def mark_flushed(self) -> None:
        """Nothing is pending: every flush requested before the last take is complete."""
        with self._cond:
            self._flush_done = self._flush_taken
            self._cond.notify_all()

    # ------------------------------------------------------------------ lifecycle

    def request_flush(self) -> int:
        with self._lock:
            self._flush_requested += 1
            return self._flush_requested

    def wait_flushed(self, wanted: int, timeout_s: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._flush_done >= wanted, timeout_s)

    def close(self, timeout_s: float) -> bool:
        """Refuse further events; ``True`` the first time (which sets the stop deadline)."""
        with self._lock:
            if self._closed:
                return False
            self._closed = True
            self.stop_deadline = time.monotonic() + timeout_s
            return True

    @property
    def closed(self) -> bool:
        return self._closed

    def snapshot(self) -> ProducerStats:
        with self._lock:
            return ProducerStats(
                emitted=self._emitted,
                sent_events=self._sent_events,
                sent_batches=self._sent_batches,
                dropped_full=self._dropped_full,
                dropped_send=self._dropped_send,
                dropped_closed=self._dropped_closed,
                rejected=self._rejected,
                rejected_privacy=self._rejected_privacy,
                rejected_by_field=dict(self._rejected_by_field),
                send_errors=self._send_errors,
                retries=self._retries,
                buffered=self._buffered,
            )
