"""Buffered events -> batch envelopes (``schemas.wire.WireBatch`` JSON, one pool each).

``emit()`` builds each event as a :class:`schemas.wire.WireEvent` on the caller's thread: a
msgspec struct that the garbage collector does not track, so the request path allocates nothing
that would trigger a collection. The flush thread only wraps a pool's events in a
:class:`~schemas.wire.WireBatch` and encodes it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from schemas.wire import WireBatch, WireEvent, encode_batch

__all__ = ["Envelope", "build_envelope"]


@dataclass(slots=True)
class Envelope:
    """One encoded envelope waiting for (or being retried on) the transport."""

    pool: str
    batch_id: str
    payload: bytes
    event_count: int
    attempts: int = 0


def build_envelope(
    pool: str, events: list[WireEvent], *, source_host: str, batch_id: str
) -> Envelope:
    """Encode ``events`` (all of one pool, at most ``MAX_EVENTS_PER_BATCH``) as one envelope."""
    batch = WireBatch(
        batch_id=batch_id,
        source_host=source_host,
        pool=pool,
        sent_ms=time.time_ns() // 1_000_000,
        events=events,
    )
    return Envelope(pool, batch_id, encode_batch(batch), len(events))
