"""The web dashboard: ``/`` serves its page and ``/static/...`` its assets (built from ``web/``).

The page is a static shell (no data in it), so it is served without a token; everything it
shows it reads from REST v1 with the caller's token (docs/dashboard.md). The assets are committed
in ``api/static`` (``npm run build`` in ``web/``), so serving needs no node. Responses carry a
Content-Security-Policy allowing only this origin: no CDN, no inline script.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["STATIC_DIR", "mount_dashboard", "router"]

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
"""The built dashboard (``index.html``, ``app.js``, ``app.css``)."""

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # asset names carry no hash: browsers revalidate (ETag) instead of keeping a stale build
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=FileResponse)
def index() -> FileResponse:
    """The dashboard page."""
    return FileResponse(STATIC_DIR / "index.html", headers=SECURITY_HEADERS)


class _WithHeaders:
    """Adds :data:`SECURITY_HEADERS` to every answer of the wrapped static files app."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, receive, send_with_headers)


def mount_dashboard(app: FastAPI) -> None:
    """Serve the dashboard from ``app``: ``/`` and ``/static``."""
    app.include_router(router)
    app.mount("/static", _WithHeaders(StaticFiles(directory=STATIC_DIR)), name="static")
