"""The producer's bounded in-memory buffer and its counters; ``offer()`` takes no lock.

Request threads (:meth:`EventBuffer.offer`) and the flush thread share three structures, each
changed only by single operations that CPython performs atomically (one C call under the GIL;
free-threaded builds lock these containers per object):

* a permit pool, a ``bytearray`` of ``max_events`` bytes: admitting an event pops one byte, and an
  empty pool (``IndexError``) means the buffer is full, so the bound is exact however many
  threads emit at once. The flush thread puts permits back when events are delivered or dropped,
  so the bound counts every event not yet settled, including encoded envelopes being retried;
* a ``deque`` of events: request threads append, only the flush thread pops. An entry is a
  built :class:`schemas.wire.WireEvent` (``emit()``) or the arguments of ``emit_deferred()``
  (:data:`QueuedArguments`), which the flush thread builds with ``resolve`` as it drains the
  queue; one that does not build gives its place back (counted as rejected by ``resolve``'s
  owner through :meth:`EventBuffer.reject`);
* :class:`producer.tally.Tally` counters for the calls that were refused (full, closed).

Nothing a request thread does can wait for the flush thread, or for another request thread
preempted in the middle of ``offer()``: there is no lock to wait for.

The flush thread moves queued events into per-pool batches that it alone owns. A pool's batch is
sealed the moment it holds ``batch_max_events`` records (the next record of that pool starts a
new batch) and is due then, or when its first record has waited ``batch_max_age_s`` since the
flush thread took it from the queue (which it does at least every quarter of that age while
batches are open, and at once when the first event arrives at an idle buffer), or at once when a
flush or close asks for everything. Request threads wake the flush thread only when the queue
could have filled a batch (``wake_at``), not per event. The counters the flush thread changes, the
flush requests and the close state are kept under one lock that request threads never take.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from producer.stats import ProducerStats
from producer.tally import Tally
from schemas.wire import WireEvent

__all__ = ["Batch", "EventBuffer", "QueuedArguments"]

Batch = tuple[str, list[WireEvent]]
"""A pool and its events, oldest first."""

QueuedArguments = tuple[Any, ...]
"""The arguments of one ``MetricsProducer.emit_deferred()`` call, in the order of
``producer.checks.EventBuilder.build``, not checked yet."""

_NEVER = sys.maxsize


class _PoolBatch:
    __slots__ = ("first_mono", "records")

    def __init__(self, first_mono: float) -> None:
        self.first_mono = first_mono
        self.records: list[WireEvent] = []


class EventBuffer:
    """Queued events, per-pool batches and every counter of
    :class:`producer.stats.ProducerStats`."""

    def __init__(
        self,
        *,
        max_events: int,
        batch_max_events: int,
        batch_max_age_s: float,
        wake: Callable[[], None],
        resolve: Callable[[QueuedArguments], WireEvent | None],
    ) -> None:
        self._max_events = max_events
        self._batch_max = batch_max_events
        self._age_s = batch_max_age_s
        self._poll_s = batch_max_age_s / 4
        self._wake = wake
        self._resolve = resolve
        # Shared with request threads (see the module docstring).
        self._permits = bytearray(max_events)
        self._take_permit = self._permits.pop
        self._queue: deque[WireEvent | QueuedArguments] = deque()
        self._append = self._queue.append
        self._dropped_full = Tally()
        self._dropped_closed = Tally()
        self.wake_at = 1
        """Queue length at which a request thread wakes the flush thread."""
        self.closed = False
        # Flush-thread state.
        self._pools: dict[str, _PoolBatch] = {}
        self._sealed: list[Batch] = []
        # Under the lock.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._finished = False
        self.stop_deadline = math.inf
        self._flush_requested = 0
        self._flush_taken = 0
        self._flush_done = 0
        self._sent_events = 0
        self._sent_batches = 0
        self._dropped_send = 0
        self._rejected = 0
        self._rejected_privacy = 0
        self._rejected_by_field: dict[str, int] = {}
        self._send_errors = 0
        self._retries = 0

    # ------------------------------------------------------------------ request threads

    def offer(self, event: WireEvent | QueuedArguments) -> bool:
        """Buffer one valid event (or arguments to build one from); ``False`` (and counted) if
        full or closed. Takes no lock."""
        if self.closed:
            self._dropped_closed.add()
            return False
        try:
            self._take_permit()
        except IndexError:
            self._dropped_full.add()
            return False
        self._append(event)
        if len(self._queue) >= self.wake_at:
            self.wake_at = _NEVER  # one wake per round is enough
            self._wake()
        if self.closed:  # close() ran since the check above: make sure someone settles it
            self._settle_late()
        return True

    def _settle_late(self) -> None:
        """An event queued while ``close()`` ran: if the flush thread has finished, nobody will
        send it, so it is dropped like any event unsent at close."""
        with self._lock:
            if not self._finished:
                return  # the flush thread has not finished: it will take the event
            count = len(self._queue)
            for _ in range(count):
                self._queue.popleft()
            self._settle_dropped(count)

    def reject(self, field: str, *, privacy: bool, queued: bool) -> None:
        """Count an invalid event; ``queued``: it held a place in the buffer, given back."""
        with self._lock:
            if queued:
                self._permits.append(0)
            self._rejected += 1
            if privacy:
                self._rejected_privacy += 1
            self._rejected_by_field[field] = self._rejected_by_field.get(field, 0) + 1

    # ------------------------------------------------------------------ flush thread

    def take_due(self, now: float) -> tuple[list[Batch], float, bool]:
        """Move queued events into batches and remove the due ones:
        ``(batches, next deadline, closing)``."""
        with self._lock:
            closing = self.closed
            take_all = closing or self._flush_requested > self._flush_taken
            if take_all:
                self._flush_taken = self._flush_requested
        # After reading the flush request: every event offered before it is in the queue now.
        self._drain(now)
        due, self._sealed = self._sealed, []
        next_due = math.inf
        pools = self._pools
        for pool, batch in list(pools.items()):
            deadline = batch.first_mono + self._age_s
            if take_all or deadline <= now:
                due.append((pool, batch.records))
                del pools[pool]
            else:
                next_due = min(next_due, deadline)
        if pools:
            # The queue may hold the first events of another pool: look again soon so their
            # age clock starts late by at most a quarter of the age.
            next_due = min(next_due, now + self._poll_s)
            self.wake_at = self._batch_max - max(len(b.records) for b in pools.values())
        else:
            self.wake_at = 1  # idle: the first event starts an age clock
        return due, next_due, closing

    def _drain(self, now: float) -> None:
        queue, pools, sealed, batch_max = self._queue, self._pools, self._sealed, self._batch_max
        popleft, resolve = queue.popleft, self._resolve
        for _ in range(len(queue)):
            entry = popleft()
            if isinstance(entry, WireEvent):
                event = entry
            else:
                built = resolve(entry)  # emit_deferred()'s arguments
                if built is None:
                    continue
                event = built
            pool = event.pool
            batch = pools.get(pool)
            if batch is None:
                batch = pools[pool] = _PoolBatch(now)
            records = batch.records
            records.append(event)
            if len(records) == batch_max:
                sealed.append((pool, records))
                del pools[pool]

    def wake_pending(self) -> bool:
        """``True`` if request threads queued enough to wake the flush thread while it was busy
        (checked after :meth:`take_due` set ``wake_at``, before the thread sleeps)."""
        return len(self._queue) >= self.wake_at

    def holds_events(self) -> bool:
        return bool(self._pools or self._sealed or self._queue)

    def delivered(self, event_count: int, *, retried: bool) -> None:
        with self._lock:
            self._sent_events += event_count
            self._sent_batches += 1
            self._permits.extend(bytes(event_count))
            if retried:
                self._retries += 1

    def send_failed(self, event_count: int, *, dropped: bool) -> None:
        with self._lock:
            self._send_errors += 1
            if dropped:
                self._settle_dropped(event_count)

    def drop(self, event_count: int) -> None:
        """Events the flush thread gives up on (unencodable, or unsent at the close deadline)."""
        with self._lock:
            self._settle_dropped(event_count)

    def _settle_dropped(self, event_count: int) -> None:
        self._dropped_send += event_count
        self._permits.extend(bytes(event_count))

    def finish_if_empty(self) -> bool:
        """At close: ``True`` (and finished: later stragglers drop themselves) if no event is
        left in the queue or in a batch."""
        with self._lock:
            if self.holds_events():
                return False
            self._finished = True
            return True

    def drop_held_and_finish(self) -> int:
        """At the close deadline: drop every event still queued or batched and finish; returns
        the number of events dropped."""
        with self._lock:
            count = sum(len(b.records) for b in self._pools.values())
            count += sum(len(records) for _, records in self._sealed)
            queued = len(self._queue)
            for _ in range(queued):  # not clear(): a straggler's later event settles itself
                self._queue.popleft()
            count += queued
            self._pools.clear()
            self._sealed.clear()
            self._settle_dropped(count)
            self._finished = True
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
            if self.closed:
                return False
            self.closed = True
            self.stop_deadline = time.monotonic() + timeout_s
            return True

    def snapshot(self) -> ProducerStats:
        with self._lock:
            # Permits come back (under this lock) exactly when events are sent or dropped, so
            # the accounting identity holds by construction.
            buffered = self._max_events - len(self._permits)
            dropped_full = self._dropped_full.value
            return ProducerStats(
                emitted=self._sent_events + self._dropped_send + buffered + dropped_full,
                sent_events=self._sent_events,
                sent_batches=self._sent_batches,
                dropped_full=dropped_full,
                dropped_send=self._dropped_send,
                dropped_closed=self._dropped_closed.value,
                rejected=self._rejected,
                rejected_privacy=self._rejected_privacy,
                rejected_by_field=dict(self._rejected_by_field),
                send_errors=self._send_errors,
                retries=self._retries,
                buffered=buffered,
            )
