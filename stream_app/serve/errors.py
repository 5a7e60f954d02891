"""Errors of the HTTP ingest (:mod:`stream_app.serve`).

``IngestError``
    Base; ``retriable`` says whether the sender should send the same body again later.
``IngestBusy`` (retriable)
    The pipeline's bounded queue is full: back off ``retry_after_s`` and retry (HTTP 429).
``IngestUnavailable`` (retriable)
    The ingest cannot take records now (starting, replaying its inbox, stopping, its inbox or
    the forwarding broker failing): retry after ``retry_after_s`` (HTTP 503).
``ListenFailed`` (poison)
    The HTTP server could not start listening (the port is taken, the address is not local).
``BodyRejected`` (poison)
    The body cannot be read: too large before or after decompression (``too_large``), an
    unsupported encoding, corrupt compressed data. Sending it again cannot help.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = ["BodyRejected", "IngestBusy", "IngestError", "IngestUnavailable", "ListenFailed"]


class IngestError(Exception):
    """Base class of the errors raised by :mod:`stream_app.serve`."""

    retriable: ClassVar[bool] = False


class IngestBusy(IngestError):
    """The pipeline's queue is full (retriable)."""

    retriable = True

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class IngestUnavailable(IngestError):
    """The ingest cannot take records right now (retriable)."""

    retriable = True

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BodyRejected(IngestError):
    """The request body cannot be read (poison). ``kind``: ``too_large``, ``encoding``,
    ``corrupt``."""

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class ListenFailed(IngestError):
    """The HTTP server could not listen on its address (poison: choose another port)."""
