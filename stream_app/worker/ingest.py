"""One record into a partition's aggregator: the decode-and-add step the worker and flush
rebuilds share (so a rebuilt flush aggregates the same records the same way)."""

from __future__ import annotations

from schemas.errors import DecodeError
from schemas.wire import WireEvent, decode_record
from stream_app.core.aggregator import WindowAggregator

__all__ = ["ingest_record"]

_NO_EVENTS: tuple[WireEvent, ...] = ()


def ingest_record(
    aggregator: WindowAggregator,
    *,
    source: str,
    partition: int,
    offset: int,
    value: bytes | None,
    now_ms: int,
) -> tuple[list[WireEvent], str | None]:
    """Decode ``value`` (an envelope or one event) and add it; returns (events, None), or
    ([], the dead-letter reason) for a record that cannot be decoded.

    Either way the offset is added, so the flush's range covers it and storage knows it was
    handled.
    """
    if value is None:
        reason = "empty record: no value"
    else:
        try:
            events = decode_record(value)
        except DecodeError as exc:
            reason = str(exc)
        else:
            aggregator.add(events, source=source, partition=partition, offset=offset, now_ms=now_ms)
            return events, None
    aggregator.add(_NO_EVENTS, source=source, partition=partition, offset=offset, now_ms=now_ms)
    return [], reason
