"""A bounded hand-off of records to the pipeline's event loop: the one queue every transport feeds.

Two kinds of record arrive:

- encoded records (``bytes``, an envelope or a bare event) from the in-process transport, which
  calls :meth:`RecordHandoff.deliver` from the producer's flush thread;
- :class:`DecodedRecord` from the HTTP ingest (``stream_app.serve``), which has already decoded
  and validated the events (it answers per event) and stored them in its durable inbox under an
  offset of its own source; they go in with :meth:`RecordHandoff.reserve` then
  :meth:`RecordHandoff.put_reserved`.

Capacity is counted in records (``max_records`` slots) and, for decoded records, in events
(``max_events``, about 60 MB of decoded events; one record may carry up to
``MAX_EVENTS_PER_BATCH`` events). When the pipeline
falls behind (a slow or unavailable sink), ``deliver`` waits up to ``put_timeout_s`` for a slot
and then raises :class:`producer.errors.TransportUnavailable` (the producer keeps the batch and
retries), and ``reserve`` returns ``False`` (the HTTP ingest answers 429 with ``Retry-After``).
A slot is freed once the pipeline has aggregated its record (:meth:`done`). Nothing here grows
without bound.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from dataclasses import dataclass

from producer.errors import TransportUnavailable
from schemas.column_batch import ColumnBatch
from schemas.wire import WireEvent

__all__ = ["DecodedRecord", "HandoffItem", "RecordHandoff"]


@dataclass(frozen=True, slots=True)
class DecodedRecord:
    """Validated events of one record, with the source and offset they are stored under: a list
    of events (v1 envelope or bare event), or the columns of a v2 envelope (``events`` empty)."""

    events: list[WireEvent]
    source: str
    offset: int
    columns: ColumnBatch | None = None

    @property
    def count(self) -> int:
        """How many events the record carries."""
        return len(self.events) if self.columns is None else len(self.columns)


HandoffItem = bytes | DecodedRecord


class RecordHandoff:
    """Thread-safe, bounded queue of records, consumed by one asyncio task."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        max_records: int,
        max_events: int = 250_000,
        put_timeout_s: float = 1.0,
    ) -> None:
        if max_records < 1 or max_events < 1:
            raise ValueError("hand-off bounds must be positive")
        self._loop = loop
        self._cond = threading.Condition()
        self._free_slots = max_records
        self._max_events = max_events
        self._pending_events = 0
        self._items: collections.deque[HandoffItem] = collections.deque()
        self._ready = asyncio.Event()
        self._put_timeout_s = put_timeout_s
        self._closed = False

    def _room_for(self, events: int) -> bool:
        # A record larger than the whole event budget still passes when nothing else is pending.
        if self._closed or self._free_slots < 1:
            return self._closed
        return self._pending_events == 0 or self._pending_events + events <= self._max_events

    def reserve(self, events: int, timeout_s: float = 0.0) -> bool:
        """Take a slot for one decoded record of ``events`` events (any thread); ``False`` when
        none frees up within ``timeout_s`` or the hand-off is closed."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._room_for(events), timeout_s):
                return False
            if self._closed:
                return False
            self._free_slots -= 1
            self._pending_events += events
            return True

    def unreserve(self, events: int) -> None:
        """Give back a slot taken by :meth:`reserve` that will not be used."""
        with self._cond:
            self._free_slots += 1
            self._pending_events -= events
            self._cond.notify_all()

    def put_reserved(self, record: DecodedRecord) -> None:
        """Queue a decoded record whose slot :meth:`reserve` took (any thread). Records are
        aggregated in the order they are put."""
        self._append(record)

    def deliver(self, pool: str, payload: bytes) -> None:
        """Hand one record over (called from any thread); raises TransportUnavailable when full."""
        with self._cond:
            if self._closed:
                raise TransportUnavailable("the in-process pipeline is stopped")
            if not self._cond.wait_for(lambda: self._room_for(0), self._put_timeout_s):
                raise TransportUnavailable(
                    f"in-process pipeline is behind: no free slot for pool {pool} "
                    f"within {self._put_timeout_s}s"
                )
            if self._closed:
                raise TransportUnavailable("the in-process pipeline is stopped")
            self._free_slots -= 1
        self._append(payload)

    def _append(self, item: HandoffItem) -> None:
        self._items.append(item)
        # A closed loop raises RuntimeError: the record stays queued for the final drain.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._ready.set)

    def take(self, max_records: int) -> list[HandoffItem]:
        """Pop up to ``max_records`` (loop thread); their slots are freed by :meth:`done`."""
        items = self._items
        out: list[HandoffItem] = []
        events = 0
        while items and len(out) < max_records:
            item = items.popleft()
            if isinstance(item, DecodedRecord):
                events += item.count
            out.append(item)
        if events:
            with self._cond:
                self._pending_events -= events
                self._cond.notify_all()
        if not items:
            self._ready.clear()
            if items:  # appended between the check and the clear
                self._ready.set()
        return out

    def done(self, count: int) -> None:
        """Release ``count`` slots once their records are aggregated."""
        with self._cond:
            self._free_slots += count
            self._cond.notify_all()

    async def wait(self, timeout_s: float) -> None:
        """Wait until records are ready or ``timeout_s`` passed."""
        if self._items:
            return
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except TimeoutError:
            return

    def close(self) -> None:
        """Refuse further deliveries and reservations."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)
