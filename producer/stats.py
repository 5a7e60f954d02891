"""Producer counters, as one consistent snapshot.

Accounting identity, exact at any snapshot:
``emitted == sent_events + dropped_full + dropped_send + buffered``.
``rejected`` and ``dropped_closed`` count calls that never became events.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ProducerStats"]


@dataclass(frozen=True, slots=True)
class ProducerStats:
    """A snapshot of a producer's counters (all monotonic except ``buffered``)."""

    emitted: int = 0
    """emit() calls with valid arguments (each was buffered or dropped_full)."""
    sent_events: int = 0
    """Events in envelopes the transport accepted."""
    sent_batches: int = 0
    """Envelopes the transport accepted."""
    dropped_full: int = 0
    """Valid events dropped because the in-memory buffer was full."""
    dropped_send: int = 0
    """Events dropped after a poison transport error, or still unsent when close() timed out."""
    dropped_closed: int = 0
    """emit() calls after close() (not counted in ``emitted``)."""
    rejected: int = 0
    """emit() calls refused for invalid arguments (privacy or schema; not in ``emitted``)."""
    rejected_privacy: int = 0
    """The part of ``rejected`` that looked like an address, URL, credentials or path."""
    rejected_by_field: dict[str, int] = field(default_factory=dict)
    """``rejected`` broken down by the offending field."""
    send_errors: int = 0
    """Failed transport.send() attempts (retriable or poison)."""
    retries: int = 0
    """Envelopes re-sent after a retriable transport error."""
    buffered: int = 0
    """Events held in memory right now (waiting, encoded or being retried)."""
