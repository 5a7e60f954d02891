"""``POST /api/v1/sql`` (admin): one read-only query over the metrics database, streamed.

For analysts while ``serve`` holds the embedded store (nobody else can open it). The query is
admitted by :func:`stream_app.storage.export_sql.checked_query` (ClickHouse parses and analyses
it: one SELECT, tables of the metrics database only, no file/url/remote table functions) and
runs with the engine's ``readonly = 1``, ``max_execution_time``, ``max_result_rows`` and
``max_result_bytes`` (settings ``sql_*``). A refused query is a 400 problem saying why. The
result streams in the chosen format (``CSVWithNames``: its header from the query with ``LIMIT 0``,
then the rows as ``CSV``; ``JSONEachRow``; ``Parquet``); a failure
mid-stream (a limit reached) ends CSV/NDJSON with the same status line as an export
(``# export-error: ...`` / ``{"export_error": ...}``; success: ``# export-complete`` /
``{"export_complete": ...}`` with ``rows`` null) and cuts a Parquet body short.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from api.auth import AUTH_RESPONSES, Role, require_role
from api.routes.export import FILE_CONTENT, stream_in_thread
from api.routes.query import run_query
from api.settings import ApiSettings
from stream_app.storage.export_plan import ExportFormat
from stream_app.storage.export_sql import CLICKHOUSE_FORMATS, QueryRefused, SqlLimits, checked_query
from stream_app.storage.queries import StorageQueries

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(
    prefix="/api/v1",
    tags=["sql"],
    dependencies=[Depends(require_role(Role.ADMIN))],
    responses=AUTH_RESPONSES,
)


class SqlRequest(BaseModel):
    """One query and the format of its result."""

    query: Annotated[str, Field(min_length=1, max_length=100_000, description="One SELECT")]
    format: ExportFormat = ExportFormat.CSV


@router.post(
    "/sql",
    summary="One read-only SELECT over the metrics database, streamed (admin)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The result, chunked; CSV/NDJSON end with a status line",
            "content": FILE_CONTENT,
        },
        400: {"description": "The query is refused, and why (problem+json)"},
        503: {"description": "Storage did not answer (problem+json)"},
    },
)
async def sql(request: Request, body: SqlRequest) -> StreamingResponse:
    settings: ApiSettings = request.app.state.settings
    queries: StorageQueries = request.app.state.queries
    limits = SqlLimits(
        settings.sql_max_execution_time_s,
        settings.sql_max_result_rows,
        settings.sql_max_result_bytes,
    )
    try:
        admitted = await run_query(
            request, lambda: checked_query(queries.client, queries.database, body.query, limits)
        )
    except QueryRefused as exc:
        raise HTTPException(400, f"query refused: {exc}") from exc
    fmt = body.format

    def produce() -> Iterator[bytes]:
        if fmt is ExportFormat.CSV:  # the header first, then rows streamed as plain CSV
            with queries.client.stream(admitted.header_sql, "CSVWithNames") as chunks:
                yield from chunks
        with queries.client.stream(admitted.sql, CLICKHOUSE_FORMATS[fmt]) as chunks:
            yield from chunks

    async def stream() -> AsyncIterator[bytes]:
        error: str | None = None
        async for item in stream_in_thread(produce, name="pwm-api-sql"):
            if isinstance(item, BaseException):
                logger.warning("sql query failed mid-stream: %s", item)
                error = f"the query failed: {_reason(item)}"
                break
            yield item
        if fmt is ExportFormat.CSV:
            yield (f"# export-error: {error}" if error else "# export-complete").encode() + b"\n"
        elif fmt is ExportFormat.NDJSON:
            end = {"export_error": error} if error else {"export_complete": {"rows": None}}
            yield json.dumps(end).encode() + b"\n"

    return StreamingResponse(stream(), media_type=fmt.media_type)


def _reason(exc: BaseException) -> str:
    text = str(exc)
    for code in ("TOO_MANY_ROWS_OR_BYTES", "TIMEOUT_EXCEEDED", "READONLY", "MEMORY_LIMIT_EXCEEDED"):
        if code in text:
            return code
    return "see the server log"
