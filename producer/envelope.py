"""Buffered records -> batch envelopes (``schemas.wire.WireBatch`` JSON, one pool each).

``emit()`` stores a plain tuple per event (cheapest to build on the caller's thread); the flush
thread turns them into :class:`schemas.wire.WireEvent` structs here and encodes them as one
envelope.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from schemas.events import Outcome
from schemas.wire import WireBatch, WireEvent, encode_batch

__all__ = ["Envelope", "Record", "build_envelope"]

Record = tuple[
    int,  # sequence number (event id suffix)
    int,  # ts_ms
    str,  # pool
    str,  # region
    Outcome,
    float,  # latency_ms
    str | None,  # proxy_id
    int | None,  # status_code
    int,  # bytes_in
    int,  # bytes_out
    int,  # attempts
    str | None,  # target_domain
]


@dataclass(slots=True)
class Envelope:
    """One encoded envelope waiting for (or being retried on) the transport."""

    pool: str
    batch_id: str
    payload: bytes
    event_count: int
    attempts: int = 0


def build_envelope(
    pool: str, records: list[Record], *, source_host: str, id_prefix: str, batch_id: str
) -> Envelope:
    """Encode ``records`` (all of one pool, at most ``MAX_EVENTS_PER_BATCH``) as one envelope.

    Event ids are ``{id_prefix}{seq:x}``.
    """
    events = [
        WireEvent(
            f"{id_prefix}{seq:x}",
            ts_ms,
            ev_pool,
            region,
            outcome,
            latency_ms,
            source_host,
            proxy_id,
            status_code,
            bytes_in,
            bytes_out,
            attempts,
            domain,
        )
        for (
            seq,
            ts_ms,
            ev_pool,
            region,
            outcome,
            latency_ms,
            proxy_id,
            status_code,
            bytes_in,
            bytes_out,
            attempts,
            domain,
        ) in records
    ]
    batch = WireBatch(
        batch_id=batch_id,
        source_host=source_host,
        pool=pool,
        sent_ms=time.time_ns() // 1_000_000,
        events=events,
    )
    return Envelope(pool, batch_id, encode_batch(batch), len(events))
