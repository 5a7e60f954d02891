"""Errors of the producer package.

``ProducerError``
    Base of everything this package raises. ``retriable`` tells the caller what to do.
``PrivacyViolation`` (``ValueError``; poison)
    A field value looks like something that must never leave a fleet host: an IP address,
    a host:port, a URL, credentials, or a path or query. The message names the field, never the
    value. Raised at construction (settings) and, with ``strict=True``, by ``emit()``; otherwise
    ``emit()`` counts a rejection and returns ``False``.
``InvalidEvent`` (``ValueError``; poison)
    An ``emit()`` argument is out of range or of the wrong type (same handling as above).
``TransportError``
    A transport could not deliver an envelope. Never reaches ``emit()`` callers.
``TransportUnavailable`` (retriable)
    The destination is unreachable or overloaded: the producer keeps the envelope, backs off and
    retries it (its events stay counted in the bounded buffer).
``TransportRejected`` (poison)
    The destination refused this envelope (too large, not authorised, malformed): retrying
    cannot help, so it is dropped and its events are counted in ``dropped_send``.
``SpoolError`` (retriable)
    The on-disk spool could not be read or written (disk full, locked, corrupt).
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "InvalidEvent",
    "PrivacyViolation",
    "ProducerError",
    "SpoolError",
    "TransportError",
    "TransportRejected",
    "TransportUnavailable",
]


class ProducerError(Exception):
    """Base class of the errors raised by :mod:`producer`."""

    retriable: ClassVar[bool] = False


class PrivacyViolation(ProducerError, ValueError):
    """A value that must not leave the fleet host (IP, host:port, URL, credentials, path)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}; it must not leave the fleet host")
        self.field = field
        self.reason = reason


class InvalidEvent(ProducerError, ValueError):
    """An emit() argument is out of range or of the wrong type."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class TransportError(ProducerError):
    """A transport could not deliver an envelope."""


class TransportUnavailable(TransportError):
    """Retriable: the destination is unreachable or overloaded right now."""

    retriable = True


class TransportRejected(TransportError):
    """Poison: the destination refused this envelope; retrying cannot help."""


class SpoolError(ProducerError):
    """Retriable: the on-disk spool could not be read or written."""

    retriable = True
