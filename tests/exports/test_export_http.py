"""GET /api/v1/export and /export/meta, and POST /api/v1/sql, on seeded chDB."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI

from api.app import create_app
from stream_app.storage.errors import SinkUnavailable
from stream_app.storage.export import PARQUET_META_KEY, ExportStream
from stream_app.storage.queries import StorageQueries
from tests.api.rest_support import ADMIN_TOKEN, READ_TOKEN, History, api_settings, client
from tests.exports.conftest import NOW_MS, Storage

RANGE = {"range": "45m", "resolution": "1m"}


def _app(storage: Storage, **settings: Any) -> FastAPI:
    storage_settings, storage_client = storage
    return create_app(
        api_settings(**settings),
        StorageQueries(storage_client, storage_settings.database),
        clock_s=lambda: NOW_MS / 1000,
    )


async def test_csv_export_streams_rows_and_ends_with_the_complete_line(
    export_storage: Storage, history: History
) -> None:
    async with client(_app(export_storage), READ_TOKEN) as http:
        response = await http.get(
            "/api/v1/export", params={**RANGE, "pool": ["residential", "mobile"], "format": "csv"}
        )
        assert response.status_code == 200, response.text
        meta = await http.get(response.headers["link"].split(";")[0].strip("<>"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[-1].startswith("# export-complete rows=")
    rows = list(csv.DictReader(io.StringIO("\n".join(lines[:-1]))))
    assert lines[-1] == f"# export-complete rows={len(rows)}"
    assert sum(int(r["requests"]) for r in rows) == len(history.events)
    assert meta.status_code == 200
    assert meta.json()["resolution"]["table"] == "agg_1m"
    assert meta.json()["filters"]["pools"] == ["residential", "mobile"]


async def test_ndjson_and_parquet_over_http(export_storage: Storage, history: History) -> None:
    async with client(_app(export_storage)) as http:
        ndjson = await http.get("/api/v1/export", params={**RANGE, "format": "ndjson"})
        parquet = await http.get("/api/v1/export", params={**RANGE, "format": "parquet"})
    *rows, last = [json.loads(line) for line in ndjson.text.splitlines()]
    assert last == {"export_complete": {"rows": len(rows)}}
    table = pq.read_table(pa.BufferReader(parquet.content))
    assert table.num_rows == len(rows)
    footer = json.loads(
        pq.ParquetFile(pa.BufferReader(parquet.content)).metadata.metadata[
            PARQUET_META_KEY.encode()
        ]
    )
    assert footer["rows"] == len(rows)


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "parquet"])
async def test_a_failure_mid_stream_is_visible(
    export_storage: Storage, history: History, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    real_read = ExportStream._read

    def failing_read(self: ExportStream, start_ms: int, end_ms: int, f: str) -> Iterator[bytes]:
        if self.rows > 0:
            raise SinkUnavailable("engine went away")
        yield from real_read(self, start_ms, end_ms, f)

    monkeypatch.setattr(ExportStream, "_read", failing_read)
    async with client(_app(export_storage, export_chunk_rows=1_000)) as http:
        response = await http.get(
            "/api/v1/export", params={"range": "45m", "resolution": "10s", "format": fmt}
        )
    assert response.status_code == 200  # the failure came after the headers
    if fmt == "csv":
        last = response.text.splitlines()[-1]
        assert last.startswith("# export-error: storage failed after ")
    elif fmt == "ndjson":
        last = json.loads(response.text.splitlines()[-1])
        assert "storage failed" in last["export_error"]
    else:
        with pytest.raises(pa.ArrowInvalid):
            pq.read_table(pa.BufferReader(response.content))  # no footer


async def test_a_large_export_needs_admin(export_storage: Storage, history: History) -> None:
    app = _app(export_storage, export_max_rows_read=100)
    async with client(app, READ_TOKEN) as http:
        refused = await http.get("/api/v1/export", params=RANGE)
    async with client(app, ADMIN_TOKEN) as http:
        admitted = await http.get("/api/v1/export", params=RANGE)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert "export_max_rows_read" in refused.json()["detail"]
    assert "needs the admin role" in refused.json()["detail"]
    assert admitted.status_code == 200


async def test_bad_parameters_are_422(export_storage: Storage) -> None:
    async with client(_app(export_storage)) as http:
        bad_pool = await http.get("/api/v1/export", params={"pool": "no spaces"})
        bad_res = await http.get("/api/v1/export", params={"resolution": "5m"})
    assert bad_pool.status_code == 422
    assert "pool" in bad_pool.json()["detail"]
    assert bad_res.status_code == 422
