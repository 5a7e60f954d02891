"""Liveness and readiness: ``/healthz`` (the process answers), ``/readyz`` (its dependencies do).

Both are open to every caller (probes carry no token) and say nothing secret: ``/readyz`` names
each dependency and its state, never an exception's text (that goes to the log).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.problems import PROBLEM_JSON
from api.window_feed import WindowFeed

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Storage answered the last read",
    responses={503: {"description": "A dependency fails; the body names it"}},
)
def readyz(request: Request) -> JSONResponse:
    feed: WindowFeed = request.app.state.feed
    s = feed.status
    storage_ok = s.last_success_s is not None and not s.consecutive_failures
    doc = {
        "storage": "ok" if storage_ok else "failing",
        "last_refresh_s": s.last_success_s,
        "latest_window_end_ms": s.last_window_end_ms,
        "scopes": s.scopes,
    }
    if storage_ok:
        return JSONResponse({"status": "ready", **doc})
    if s.last_success_s is None and not s.failures:
        detail = "storage: not read yet"
    else:
        detail = f"storage: {s.consecutive_failures} consecutive reads failed (see the log)"
    body = {"type": "about:blank", "title": "Not ready", "status": 503, "detail": detail}
    return JSONResponse(
        {**body, "failing": ["storage"], **doc}, status_code=503, media_type=PROBLEM_JSON
    )
