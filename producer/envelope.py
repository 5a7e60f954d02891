"""Buffered events -> batch envelopes (one pool each), in the wire schema the settings choose.

``emit()`` builds each event as a :class:`schemas.wire.WireEvent` on the caller's thread: a
msgspec struct that the garbage collector does not track, so the request path allocates nothing
that would trigger a collection. The flush thread only wraps a pool's events in an envelope and
encodes it: a :class:`~schemas.wire.WireBatch` (schema v1, the default) or a columnar envelope
(schema v2, :mod:`producer.columnar`; ``ProducerSettings.envelope_schema``). Both carry the same
header (``batch_id``, ``source_host``, ``pool``, ``sent_ms``) and go to the same key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from producer.columnar import encode_columnar
from schemas.wire import WireBatch, WireEvent, encode_batch

__all__ = ["Envelope", "EnvelopeSchema", "build_envelope"]

EnvelopeSchema = Literal["v1", "v2"]
"""The wire schema of an envelope: ``"v1"`` (one object per event) or ``"v2"`` (columnar)."""


@dataclass(slots=True)
class Envelope:
    """One encoded envelope waiting for (or being retried on) the transport."""

    pool: str
    batch_id: str
    payload: bytes
    event_count: int
    attempts: int = 0


def build_envelope(
    pool: str,
    events: list[WireEvent],
    *,
    source_host: str,
    batch_id: str,
    schema: EnvelopeSchema = "v1",
) -> Envelope:
    """Encode ``events`` (all of one pool, 1 to ``MAX_EVENTS_PER_BATCH``) as one envelope."""
    sent_ms = time.time_ns() // 1_000_000
    if schema == "v2":
        payload = encode_columnar(
            events, batch_id=batch_id, source_host=source_host, pool=pool, sent_ms=sent_ms
        )
    else:
        payload = encode_batch(
            WireBatch(
                batch_id=batch_id,
                source_host=source_host,
                pool=pool,
                sent_ms=sent_ms,
                events=events,
            )
        )
    return Envelope(pool, batch_id, payload, len(events))
