"""``GET /api/v1/export`` and ``GET /api/v1/export/meta``: history as CSV, NDJSON or Parquet.

HTTP concerns only: the export itself is :mod:`stream_app.storage.export` (plan, chunked reads
in ClickHouse's own formats) and its metadata :mod:`stream_app.storage.export_meta`. The body is
chunked (``StreamingResponse``): one thread reads the export (each chunk spooled, so storage is
held only while ClickHouse produces it) into a small bounded queue the response drains, so
memory stays flat however large the export and however slow the client.

The end of the body says how the export ended (docs/api.md):

- CSV: a last line ``# export-complete rows=N``, or ``# export-error: ...`` when it failed;
- NDJSON: a last line ``{"export_complete": {"rows": N}}`` or ``{"export_error": "..."}``;
- Parquet: the footer (with the metadata) is written only on success: a failed export is a
  file without a footer, which no Parquet reader opens.

Read role; an export estimated above ``export_max_rows_read`` rows (scopes x steps) needs the
admin role (403 naming the estimate and the limit).
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from api.auth import AUTH_RESPONSES, Caller, Role, require_role
from api.routes.params import EndParam, RangeParam, StartParam, time_range
from api.routes.query import run_query
from api.settings import ApiSettings
from schemas.events import LABEL_PATTERN
from stream_app.storage.errors import StorageError
from stream_app.storage.export_file import PreparedExport, prepare_export
from stream_app.storage.export_plan import AUTO, ExportFormat, ExportRefused, ExportRequest
from stream_app.storage.queries import StorageQueries
from stream_app.storage.query_tiers import Retention
from stream_app.storage.settings import StorageSettings

__all__ = ["FILE_CONTENT", "router", "stream_in_thread"]

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["export"], responses=AUTH_RESPONSES)

_LABEL = re.compile(LABEL_PATTERN)
_QUEUE_CHUNKS = 16
_END = object()


def stream_in_thread(
    produce: Callable[[], Iterator[bytes]], *, name: str
) -> AsyncIterator[bytes | BaseException]:
    """The chunks ``produce()`` yields, read by one thread (storage is called from one thread
    for the whole stream) through a bounded queue; an exception ends the stream as its last
    item. The thread stops at its next chunk when the consumer goes away."""
    items: queue.Queue[object] = queue.Queue(maxsize=_QUEUE_CHUNKS)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for chunk in produce():
                if not put(chunk):
                    return
        except BaseException as exc:  # handed to the consumer, which reports it
            put(exc)
            return
        put(_END)

    async def consume() -> AsyncIterator[bytes | BaseException]:
        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        try:
            while True:
                item = await asyncio.to_thread(items.get)
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    yield item
                    return
                assert isinstance(item, bytes)
                yield item
        finally:
            stop.set()

    return consume()


ResolutionParam = Annotated[
    str,
    Query(
        pattern=r"^(auto|10s|1m|1h|1d)$",
        description="auto (the tier and step of /series for the range), or 10s, 1m, 1h, 1d rows",
    ),
]
PoolsParam = Annotated[
    list[str] | None, Query(alias="pool", description="Pool names (repeat; all when absent)")
]
RegionsParam = Annotated[
    list[str] | None, Query(alias="region", description="Region names (repeat; all when absent)")
]
FormatParam = Annotated[ExportFormat, Query(alias="format", description="csv, ndjson, parquet")]
ProxiesParam = Annotated[bool, Query(description="One row per proxy (proxy_1m)")]


def _labels(parameter: str, values: list[str] | None) -> tuple[str, ...]:
    for value in values or ():
        if len(value) > 64 or _LABEL.match(value) is None:
            raise HTTPException(422, f"query parameter {parameter}: not a name: {value!r}")
    return tuple(dict.fromkeys(values or ()))


def _settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


async def _prepare(
    request: Request,
    start: Any,
    end: Any,
    range_: str | None,
    resolution: str,
    pools: list[str] | None,
    regions: list[str] | None,
    proxies: bool,
    fmt: ExportFormat,
) -> PreparedExport:
    span = time_range(request, start, end, range_, default_range="1d")
    settings = _settings(request)
    queries: StorageQueries = request.app.state.queries
    retention: Retention = request.app.state.retention
    proxy_ttl_days = int(StorageSettings.model_fields["ttl_proxy_1m_days"].default)
    try:
        export = ExportRequest(
            span.start_ms,
            span.end_ms,
            resolution,
            _labels("pool", pools),
            _labels("region", regions),
            proxies,
            fmt,
        )
        return await run_query(
            request,
            lambda: prepare_export(
                queries.client,
                queries.database,
                export,
                now_ms=span.now_ms,
                retention=retention,
                proxy_ttl_days=proxy_ttl_days,
                window_s=settings.window_s,
            ),
        )
    except ExportRefused as exc:
        raise HTTPException(422, str(exc)) from exc


def _allowed(request: Request, caller: Caller, prepared: PreparedExport) -> None:
    limit = _settings(request).export_max_rows_read
    if prepared.rows_estimate > limit and not caller.has(Role.ADMIN):
        raise HTTPException(
            403,
            f"this export is estimated at {prepared.rows_estimate} rows ({prepared.scopes} "
            f"scopes x {prepared.plan.steps} steps of {prepared.plan.step_s} s); beyond "
            f"{limit} rows (export_max_rows_read) it needs the admin role: narrow the range, "
            "the pools or regions, or choose a coarser resolution",
        )


def _trailer(fmt: ExportFormat, rows: int, error: str | None) -> bytes:
    if fmt is ExportFormat.CSV:
        line = f"# export-error: {error}" if error else f"# export-complete rows={rows}"
    else:
        body = {"export_error": error} if error else {"export_complete": {"rows": rows}}
        line = json.dumps(body)
    return line.encode() + b"\n"


FILE_CONTENT: dict[str, Any] = {
    "text/csv": {"schema": {"type": "string"}},
    "application/x-ndjson": {"schema": {"type": "string"}},
    "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
}

_EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The rows, chunked, ending with a status line (CSV/NDJSON)",
        "content": FILE_CONTENT,
    },
    403: {"description": "Beyond export_max_rows_read without the admin role (problem+json)"},
    422: {"description": "Invalid parameters (problem+json)"},
    503: {"description": "Storage did not answer (problem+json)"},
}


@router.get(
    "/export",
    summary="A span of history as CSV, NDJSON or Parquet, streamed",
    response_class=StreamingResponse,
    responses=_EXPORT_RESPONSES,
)
async def export(
    request: Request,
    caller: Annotated[Caller, Depends(require_role(Role.READ))],
    start: StartParam = None,
    end: EndParam = None,
    range_: RangeParam = None,
    resolution: ResolutionParam = AUTO,
    pools: PoolsParam = None,
    regions: RegionsParam = None,
    proxies: ProxiesParam = False,
    fmt: FormatParam = ExportFormat.CSV,
) -> StreamingResponse:
    prepared = await _prepare(request, start, end, range_, resolution, pools, regions, proxies, fmt)
    _allowed(request, caller, prepared)
    queries: StorageQueries = request.app.state.queries
    stream = prepared.stream(
        queries.client, chunk_rows=_settings(request).export_chunk_rows, spool=True
    )

    async def body() -> AsyncIterator[bytes]:
        error: str | None = None
        async for item in stream_in_thread(lambda: iter(stream), name="pwm-api-export"):
            if isinstance(item, BaseException):
                logger.warning(
                    "export %s failed after %d rows: %s", request.url.query, stream.rows, item
                )
                error = (
                    f"storage failed after {stream.rows} rows"
                    if isinstance(item, StorageError)
                    else f"the export failed after {stream.rows} rows"
                ) + "; the rows above are incomplete (see the server log)"
                break
            yield item
        if fmt is not ExportFormat.PARQUET:
            yield _trailer(fmt, stream.rows, error)

    plan = prepared.plan
    meta_query = urlencode(
        [(k, v) for k, v in request.query_params.multi_items() if k != "format"]
        + [("format", fmt.value)]
    )
    filename = f"proxywhirl-{plan.table}-{plan.start_ms // 1000}-{plan.end_ms // 1000}{fmt.suffix}"
    headers = {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Link": f'</api/v1/export/meta?{meta_query}>; rel="describedby"',
        "X-Export-Table": plan.table,
        "X-Export-Step-S": str(plan.step_s),
        "X-Export-Rows-Estimate": str(prepared.rows_estimate),
    }
    return StreamingResponse(body(), media_type=fmt.media_type, headers=headers)


@router.get(
    "/export/meta",
    summary="The metadata document of the same export (without its row count)",
    responses={k: v for k, v in _EXPORT_RESPONSES.items() if k != 200},
)
async def export_meta(
    request: Request,
    caller: Annotated[Caller, Depends(require_role(Role.READ))],
    start: StartParam = None,
    end: EndParam = None,
    range_: RangeParam = None,
    resolution: ResolutionParam = AUTO,
    pools: PoolsParam = None,
    regions: RegionsParam = None,
    proxies: ProxiesParam = False,
    fmt: FormatParam = ExportFormat.CSV,
) -> JSONResponse:
    prepared = await _prepare(request, start, end, range_, resolution, pools, regions, proxies, fmt)
    return JSONResponse(prepared.metadata(None))
