"""One record into a partition's aggregator: the decode-and-add step the worker and flush
rebuilds share (so a rebuilt flush aggregates the same records the same way).

Producers deliver at least once: a producer that lost an acknowledgement (broker restart, network
cut) sends the envelope again from its spool, with the same ``batch_id``. Each partition keeps the
ids of its last envelopes (:class:`RecentBatches`) and skips a repeated one, so a replay never
counts its events twice. The memory is per worker: a repeat that arrives after the partition
changed hands is not recognised (the new owner does not know the ids).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from schemas.column_batch import ColumnBatch, decode_any
from schemas.errors import DecodeError
from schemas.wire import WireBatch, WireEvent
from stream_app.core.aggregator import WindowAggregator

__all__ = ["Ingested", "RecentBatches", "ingest_record"]

_NO_EVENTS: tuple[WireEvent, ...] = ()


class RecentBatches:
    """The last ``capacity`` envelope ids of one partition."""

    __slots__ = ("_capacity", "_ids", "_order")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._ids: set[str] = set()
        self._order: deque[str] = deque()

    def repeated(self, batch_id: str) -> bool:
        """True when ``batch_id`` was seen recently; otherwise remember it."""
        if batch_id in self._ids:
            return True
        if self._capacity <= 0:
            return False
        self._ids.add(batch_id)
        self._order.append(batch_id)
        if len(self._order) > self._capacity:
            self._ids.discard(self._order.popleft())
        return False


@dataclass(frozen=True, slots=True)
class Ingested:
    """What one record gave: its events (v1) or columns (v2), or the dead-letter reason, or a
    repeated envelope."""

    events: list[WireEvent]
    reason: str | None = None
    repeated: bool = False
    columns: ColumnBatch | None = None

    @property
    def count(self) -> int:
        """How many events the record added."""
        return len(self.events) if self.columns is None else len(self.columns)

    def mean_ts_ms(self) -> int:
        """The mean event time of a record that added events (delay statistics)."""
        if self.columns is None:
            return sum(ev.ts_ms for ev in self.events) // len(self.events)
        return int(self.columns.ts_ms.sum()) // len(self.columns)

    def raw_events(self) -> list[WireEvent]:
        """The record's events as v1 structs (built from the columns for a v2 envelope)."""
        return self.events if self.columns is None else self.columns.events()


def _decode(
    value: bytes, recent: RecentBatches | None
) -> tuple[list[WireEvent] | ColumnBatch, bool]:
    decoded = decode_any(value)
    if isinstance(decoded, WireEvent):
        return [decoded], False
    if recent is not None and recent.repeated(decoded.batch_id):
        return [], True
    if isinstance(decoded, WireBatch):
        return decoded.events, False
    return decoded, False


def ingest_record(
    aggregator: WindowAggregator,
    *,
    source: str,
    partition: int,
    offset: int,
    value: bytes | None,
    now_ms: int,
    record_ms: int | None = None,
    recent: RecentBatches | None = None,
) -> Ingested:
    """Decode ``value`` (a v2 or v1 envelope, or one event) and add its events.

    ``record_ms`` is the record's Kafka timestamp (see :mod:`stream_app.core.record_time`).
    Either way the offset is added, so the flush's range covers it and storage knows it was
    handled: also for a record that cannot be decoded (``reason``) or a repeated envelope.
    """
    if value is None:
        result = Ingested([], "empty record: no value")
    else:
        try:
            events, repeated = _decode(value, recent)
        except DecodeError as exc:
            result = Ingested([], str(exc))
        else:
            if isinstance(events, ColumnBatch):
                aggregator.add_columns(
                    events,
                    source=source,
                    partition=partition,
                    offset=offset,
                    now_ms=now_ms,
                    record_ms=record_ms,
                )
                return Ingested([], columns=events)
            if events:
                aggregator.add(
                    events,
                    source=source,
                    partition=partition,
                    offset=offset,
                    now_ms=now_ms,
                    record_ms=record_ms,
                )
                return Ingested(events)
            result = Ingested([], None, repeated)
    aggregator.add(_NO_EVENTS, source=source, partition=partition, offset=offset, now_ms=now_ms)
    return result
