"""An export prepared (plan, scope count, incidents) and written to a file atomically.

:func:`prepare_export` does the reads an export needs before its rows: the plan
(:mod:`.export_plan`), the number of scopes in the range (sizes the chunks, estimates the rows)
and the incidents of the span (:mod:`.export_meta`). :func:`write_export_file` then streams the
rows into a temporary file in the target's directory, writes the sidecar ``FILE.meta.json`` the
same way, fsyncs both and renames them into place: a failure (or a kill) at any point leaves no
partial file, and the temporary files are removed (a SIGKILL can leave one, named
``.FILE.*.part``, never the target).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from stream_app.storage.client import StorageClient
from stream_app.storage.export import ExportStream, count_scopes
from stream_app.storage.export_meta import export_metadata, span_incidents
from stream_app.storage.export_plan import (
    DEFAULT_CHUNK_ROWS,
    ExportPlan,
    ExportRequest,
    plan_export,
)
from stream_app.storage.query_tiers import Retention

__all__ = [
    "PreparedExport",
    "meta_path",
    "prepare_export",
    "write_export_file",
    "write_export_to",
]


@dataclass(frozen=True, slots=True)
class PreparedExport:
    """What is known of an export before its rows are read."""

    database: str
    plan: ExportPlan
    scopes: int
    incidents: list[dict[str, Any]]
    generated_at_ms: int

    @property
    def rows_estimate(self) -> int:
        """Scopes x steps: the most rows the export can have."""
        return self.scopes * self.plan.steps

    def metadata(self, rows: int | None) -> dict[str, Any]:
        return export_metadata(
            self.plan,
            rows=rows,
            incidents=self.incidents,
            generated_at_ms=self.generated_at_ms,
            rows_estimate=self.rows_estimate,
        )

    def stream(
        self,
        client: StorageClient,
        *,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        spool: bool = False,
        on_chunk: Callable[[int, int], None] | None = None,
    ) -> ExportStream:
        return ExportStream(
            client,
            self.database,
            self.plan,
            scopes=self.scopes,
            chunk_rows=chunk_rows,
            spool=spool,
            footer_meta=self.metadata,
            on_chunk=on_chunk,
        )


def prepare_export(
    client: StorageClient,
    database: str,
    request: ExportRequest,
    *,
    now_ms: int,
    retention: Retention,
    proxy_ttl_days: int,
    window_s: int = 10,
) -> PreparedExport:
    """Plan ``request`` and read its scope count and incidents."""
    plan = plan_export(
        request,
        now_ms=now_ms,
        retention=retention,
        proxy_ttl_days=proxy_ttl_days,
        window_s=window_s,
    )
    return PreparedExport(
        database,
        plan,
        count_scopes(client, database, plan),
        span_incidents(client, database, plan),
        now_ms,
    )


def meta_path(path: Path) -> Path:
    """The sidecar of an exported file: ``FILE.meta.json``."""
    return path.with_name(path.name + ".meta.json")


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[IO[bytes]]:
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    os.replace(temp, path)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_export_to(out: IO[bytes], chunks: Iterable[bytes]) -> None:
    for chunk in chunks:
        out.write(chunk)


def write_export_file(
    client: StorageClient,
    prepared: PreparedExport,
    path: Path,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_chunk: Callable[[int, int], None] | None = None,
) -> Mapping[str, Any]:
    """Write the export to ``path`` and its metadata to ``FILE.meta.json``, atomically (see the
    module doc); returns the metadata document (with the exact row count)."""
    path = path.resolve()
    stream = prepared.stream(client, chunk_rows=chunk_rows, on_chunk=on_chunk)
    with _atomic(path) as out:
        write_export_to(out, stream)
        document = prepared.metadata(stream.rows)
        with _atomic(meta_path(path)) as meta_out:
            meta_out.write(json.dumps(document, indent=2, sort_keys=True).encode() + b"\n")
    _fsync_dir(path.parent)
    return document
