"""An export as a stream of bytes in its file format, straight from ClickHouse's own output.

:class:`ExportStream` runs the plan's SELECT (:mod:`.export_plan`) chunk by chunk, oldest first,
and yields what ClickHouse writes (clickhouse-connect ``raw_stream``; Python never loops over
rows):

- ``csv``: ``CSVWithNames`` for the first chunk (the header), ``CSV`` for the others;
- ``ndjson``: ``JSONEachRow``;
- ``parquet``: ``ArrowStream`` record batches, read batch by batch with pyarrow and written by
  a ``ParquetWriter`` (one row group per batch); the metadata document goes into the file's
  key-value metadata (key :data:`PARQUET_META_KEY`) when the footer is written, last.

Memory stays flat whatever the range: one chunk (about ``chunk_rows`` rows) is in flight at a
time. With ``spool=True`` a chunk is first read into a spooled temporary file (in memory up to
8 MiB, on disk beyond), so the storage client is held only while ClickHouse produces the chunk,
never while a slow reader drains it (the API does this: the embedded engine also takes writes).
Rows are counted on the way (lines of CSV/NDJSON, Arrow batch lengths): :attr:`ExportStream.rows`
holds the exact count once the stream ends.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from stream_app.storage.client import StorageClient
from stream_app.storage.errors import SinkRejected
from stream_app.storage.export_plan import (
    DEFAULT_CHUNK_ROWS,
    ExportFormat,
    ExportPlan,
    export_sql,
    scopes_sql,
)

__all__ = ["PARQUET_META_KEY", "ExportStream", "count_scopes"]

PARQUET_META_KEY = "proxywhirl_metrics"
"""Key of the metadata document (JSON) in an exported Parquet file's key-value metadata."""

_SPOOL_MEMORY_BYTES = 8 << 20
_READ_BYTES = 1 << 16


def count_scopes(client: StorageClient, database: str, plan: ExportPlan) -> int:
    """How many scopes (pool x region, or proxies) have rows in the plan's range."""
    sql, parameters = scopes_sql(plan, database)
    rows = client.named_rows(sql, parameters=parameters)
    return int(rows[0]["scopes"]) if rows else 0


class _Drain(io.RawIOBase):
    """A write-only file collecting what the Parquet writer writes, drained after each batch."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


class ExportStream:
    """The bytes of one export (see the module doc). Iterate it once."""

    def __init__(
        self,
        client: StorageClient,
        database: str,
        plan: ExportPlan,
        *,
        scopes: int,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        spool: bool = False,
        footer_meta: Callable[[int], Mapping[str, Any]] | None = None,
        on_chunk: Callable[[int, int], None] | None = None,
    ) -> None:
        """``scopes``: :func:`count_scopes` of the plan (sizes the chunks). ``footer_meta``:
        the metadata document for a row count (Parquet only: written in the footer).
        ``on_chunk(chunk_index, rows_so_far)`` is called after each chunk (progress)."""
        self._client = client
        self._database = database
        self.plan = plan
        self._scopes = scopes
        self._chunk_rows = chunk_rows
        self._spool = spool
        self._footer_meta = footer_meta
        self._on_chunk = on_chunk
        self.rows = 0
        self.complete = False

    def __iter__(self) -> Iterator[bytes]:
        if self.plan.request.fmt is ExportFormat.PARQUET:
            yield from self._parquet()
        else:
            yield from self._text()
        self.complete = True

    def _chunks(self) -> Iterator[tuple[int, int, int]]:
        for index, (start, end) in enumerate(self.plan.chunks(self._scopes, self._chunk_rows)):
            yield index, start, end

    def _read(self, start_ms: int, end_ms: int, fmt: str) -> Iterator[bytes]:
        sql, parameters = export_sql(self.plan, self._database, start_ms, end_ms)
        if not self._spool:
            with self._client.stream(sql, fmt, parameters) as chunks:
                yield from chunks
            return
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_MEMORY_BYTES) as spool:
            with self._client.stream(sql, fmt, parameters) as chunks:
                for chunk in chunks:
                    spool.write(chunk)
            spool.seek(0)
            while chunk := spool.read(_READ_BYTES):
                yield chunk

    def _text(self) -> Iterator[bytes]:
        csv = self.plan.request.fmt is ExportFormat.CSV
        for index, start, end in self._chunks():
            header = csv and index == 0
            fmt = ("CSVWithNames" if header else "CSV") if csv else "JSONEachRow"
            lines = -1 if header else 0
            for chunk in self._read(start, end, fmt):
                lines += chunk.count(b"\n")
                yield chunk
            self.rows += max(0, lines)
            if self._on_chunk is not None:
                self._on_chunk(index, self.rows)

    def _parquet(self) -> Iterator[bytes]:
        drain = _Drain()
        writer: pq.ParquetWriter | None = None
        for index, start, end in self._chunks():
            for schema, batch in self._batches(start, end):
                if writer is None:
                    writer = pq.ParquetWriter(drain, schema, compression="zstd")
                if batch is not None and batch.num_rows:
                    writer.write_batch(batch)
                    self.rows += batch.num_rows
                    yield drain.take()
            if self._on_chunk is not None:
                self._on_chunk(index, self.rows)
        if writer is None:
            raise SinkRejected("export: ClickHouse wrote no Arrow schema")
        if self._footer_meta is not None:
            document = json.dumps(self._footer_meta(self.rows), sort_keys=True)
            writer.add_key_value_metadata({PARQUET_META_KEY: document})
        writer.close()
        yield drain.take()

    def _batches(
        self, start_ms: int, end_ms: int
    ) -> Iterator[tuple[pa.Schema, pa.RecordBatch | None]]:
        """The chunk's Arrow record batches, read one at a time from ClickHouse's stream
        (``None`` alone when the chunk is empty: its schema still comes)."""
        source = _IterReader(self._read(start_ms, end_ms, "ArrowStream"))
        if source.at_end():
            return
        try:
            reader = ipc.open_stream(source)
            yield reader.schema, None
            for batch in reader:
                yield reader.schema, batch
        except pa.ArrowInvalid as exc:
            raise SinkRejected(f"export: unreadable Arrow stream: {exc}") from exc


class _IterReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (pyarrow reads the stream from it)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._buffer = b""
        self._offset = 0

    def readable(self) -> bool:
        return True

    def at_end(self) -> bool:
        if self._offset >= len(self._buffer):
            self._buffer, self._offset = next(self._chunks, b""), 0
        return not self._buffer

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes, fewer only at the end (pyarrow takes a short read as EOF)."""
        parts: list[bytes] = []
        wanted = size if size is not None and size >= 0 else -1
        while wanted != 0 and not self.at_end():
            available = len(self._buffer) - self._offset
            take = available if wanted < 0 else min(wanted, available)
            parts.append(self._buffer[self._offset : self._offset + take])
            self._offset += take
            if wanted > 0:
                wanted -= take
        return b"".join(parts)

    def readinto(self, target: Any) -> int:
        view = memoryview(target).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)
