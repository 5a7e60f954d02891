"""Transports: where the producer's flush thread hands encoded batch envelopes.

A transport is called only from the producer's own flush thread, one envelope at a time, so it
needs no locking against itself. ``send`` either returns (the envelope is delivered, or durably
handed over, e.g. to the Kafka transport's spool) or raises a
:class:`producer.errors.TransportError`:
:class:`~producer.errors.TransportUnavailable` (retriable: the producer keeps the envelope and
retries it with back-off) or :class:`~producer.errors.TransportRejected` (poison: the envelope
is dropped and counted). The producer owns its transport and closes it in ``close()``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from producer.errors import TransportError, TransportRejected

__all__ = ["InProcessTransport", "Transport"]

logger = logging.getLogger(__name__)


@runtime_checkable
class Transport(Protocol):
    """Delivers encoded envelopes (``schemas.wire.WireBatch`` JSON, one pool each)."""

    def send(self, pool: str, payload: bytes, event_count: int) -> None:
        """Deliver one envelope or raise a :class:`producer.errors.TransportError` subclass."""
        ...

    def close(self) -> None:
        """Release resources; called once by the producer's ``close()``."""
        ...


class InProcessTransport:
    """Hands envelopes to a callable of the in-process pipeline: ``deliver(pool, envelope)``.

    ``deliver`` runs on the producer's flush thread. It signals back-pressure by raising
    :class:`~producer.errors.TransportUnavailable` and refuses an envelope with
    :class:`~producer.errors.TransportRejected`; any other exception is treated as poison
    (translated to ``TransportRejected``), since retrying a failing callable rarely helps.
    """

    def __init__(self, deliver: Callable[[str, bytes], None]) -> None:
        self._deliver = deliver
        self._closed = threading.Event()

    def send(self, pool: str, payload: bytes, event_count: int) -> None:
        if self._closed.is_set():
            raise TransportRejected("in-process transport is closed")
        try:
            self._deliver(pool, payload)
        except TransportError:
            raise
        except Exception as exc:
            raise TransportRejected(
                f"in-process deliver() failed for pool {pool!r} ({event_count} events): {exc!r}"
            ) from exc

    def close(self) -> None:
        self._closed.set()
