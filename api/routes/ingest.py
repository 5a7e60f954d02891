"""``POST /api/v1/ingest``: batch envelopes (or bare events) over HTTP, for the ``ingest`` role.

The body is one record as the Kafka topic carries it (``schemas.wire``: an envelope or one bare
event), JSON, sent plain or with ``Content-Encoding: gzip`` or ``zstd``. The route holds the HTTP
concerns only (auth, reading the body within ``max_body_bytes``, status codes); what happens to
the record is the hosting process's :class:`Ingestor` (the embedded pipeline of ``serve``, or
the Kafka topic behind a stateless ``api``).

========= ====================================================================================
200       taken: ``accepted`` events; ``refused`` lists each bad event (``index``, ``reason``);
          ``duplicate`` when this batch was already accepted (a retry; nothing counted twice)
401, 403  no or unknown token; a token without the ``ingest`` role
413       the body is too large, as sent or decompressed
415       not JSON, or an unsupported ``Content-Encoding``
422       nothing could be taken: the record is malformed, or every event is refused
          (problem+json with the same ``refused`` list)
429, 503  the pipeline's queue is full, or the ingest is not ready: retry after ``Retry-After``
========= ====================================================================================

Refused events and records are kept as dead letters (``ingest_dead_letters``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from api.auth import Role, require_role
from api.problems import problem
from stream_app.serve.errors import BodyRejected, IngestBusy, IngestUnavailable
from stream_app.serve.ingestor import IngestOutcome

__all__ = ["INGEST_PATH", "Ingestor", "ingest_router"]

INGEST_PATH = "/api/v1/ingest"

logger = logging.getLogger(__name__)


class Ingestor(Protocol):
    """What takes the records (blocking; called in a worker thread)."""

    def ingest(self, body: bytes, content_encoding: str | None) -> IngestOutcome:
        """Take one body; raises BodyRejected, IngestBusy or IngestUnavailable."""
        ...


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and "+json" in media)


def _refusals(outcome: IngestOutcome) -> list[dict[str, Any]]:
    return [{"index": r.index, "reason": r.reason} for r in outcome.refused]


def ingest_router(ingestor: Ingestor, *, max_body_bytes: int) -> APIRouter:
    """The ingest route around ``ingestor``."""
    router = APIRouter(tags=["ingest"], dependencies=[Depends(require_role(Role.INGEST))])

    @router.post(
        INGEST_PATH,
        summary="Take one batch envelope or bare event (JSON; gzip or zstd)",
        responses={
            413: {"description": "Body too large, as sent or decompressed"},
            415: {"description": "Not JSON, or an unsupported Content-Encoding"},
            422: {"description": "Nothing taken: the record or every event is refused"},
            429: {"description": "The pipeline's queue is full: retry after Retry-After"},
            503: {"description": "Not ready: retry after Retry-After"},
        },
    )
    async def ingest(request: Request) -> JSONResponse:
        path = request.url.path
        if not _is_json(request.headers.get("content-type")):
            return problem(415, "Unsupported media type", "send application/json", instance=path)
        try:
            body = await _read_body(request, max_body_bytes)
        except _TooLarge:
            return problem(
                413,
                "Content too large",
                f"the body is larger than {max_body_bytes} bytes",
                instance=path,
            )
        encoding = request.headers.get("content-encoding")
        try:
            outcome = await asyncio.to_thread(ingestor.ingest, body, encoding)
        except BodyRejected as exc:
            status = {"too_large": 413, "encoding": 415}.get(exc.kind, 400)
            title = {413: "Content too large", 415: "Unsupported media type"}.get(
                status, "Bad request"
            )
            return problem(status, title, str(exc), instance=path)
        except (IngestBusy, IngestUnavailable) as exc:
            if isinstance(exc, IngestBusy):
                status, title, detail = 429, "Too many requests", "the pipeline's queue is full"
            else:  # the cause may name files or storage errors: logged, not echoed
                logger.info("ingest unavailable: %s", exc)
                status, title, detail = 503, "Unavailable", "the ingest cannot take records now"
            detail += f"; retry in {exc.retry_after_s} s"
            response = problem(status, title, detail, instance=path)
            response.headers["Retry-After"] = str(exc.retry_after_s)
            return response
        doc: dict[str, Any] = {
            "accepted": outcome.accepted_events,
            "refused": _refusals(outcome),
            "duplicate": outcome.duplicate,
            "batch_id": outcome.batch_id or None,
        }
        if outcome.accepted_events == 0 and outcome.refused and not outcome.duplicate:
            detail = outcome.record_error or f"all {len(outcome.refused)} events were refused"
            return problem(422, "Invalid request", detail, instance=path, **doc)
        return JSONResponse(doc)

    return router
