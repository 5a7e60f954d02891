"""``proxywhirl-metrics export``: any span of history as CSV, NDJSON or Parquet, with its context.

``export --from TIME --to TIME [--resolution auto|10s|1m|1h|1d] [--pool P ...] [--region R ...]
[--proxies] [--format csv|ndjson|parquet] [--output FILE|-] [--data-dir DIR | --dsn DSN]``

TIME is RFC 3339 (``2026-01-01T00:00:00Z``; a date alone is midnight UTC), ``now``, or relative
to now: ``now-90d`` or ``-90d`` (units s m h d w y; ``--from -90d`` is joined into
``--from=-90d`` before parsing, see :func:`join_relative_times`). The rows stream from ClickHouse
(:mod:`stream_app.storage.export`) into a temporary file renamed into place at the end, with the
metadata in ``FILE.meta.json`` (and in a Parquet file's footer; SIGTERM and Ctrl-C remove the
temporary file, SIGKILL can leave it as ``.FILE.*.part``, never a partial FILE); ``--output -``
writes the rows to stdout (no sidecar; the metadata goes to stderr with ``--meta-stderr``).
The embedded store is opened like ``report`` opens it: while ``serve`` holds it, the command
says so and exits 2 (use ``GET /api/v1/export`` of the running server instead).
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stream_app.storage.export_plan import AUTO, ExportFormat, ExportRefused, ExportRequest
from stream_app.storage.tables import Resolution

__all__ = ["add_export_command", "join_relative_times", "parse_time_ms"]

_RELATIVE = re.compile(r"^(?:now)?-([1-9][0-9]{0,6})(s|m|h|d|w|y)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 7 * 86_400, "y": 365 * 86_400}


def parse_time_ms(text: str, now_ms: int) -> int:
    """RFC 3339, ``now`` or ``-N<unit>`` -> epoch ms (naive times are UTC)."""
    text = text.strip()
    if text == "now":
        return now_ms
    relative = _RELATIVE.match(text)
    if relative is not None:
        return now_ms - int(relative.group(1)) * _UNIT_S[relative.group(2)] * 1000
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (RFC 3339, 'now' or relative like now-90d, -15m)"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _cmd_export(args: argparse.Namespace) -> int:
    from stream_app.storage.client import get_client
    from stream_app.storage.errors import StorageError, StoreInUse
    from stream_app.storage.export_file import prepare_export, write_export_file
    from stream_app.storage.query_tiers import Retention
    from stream_app.storage.settings import StorageSettings

    # SIGTERM unwinds like Ctrl-C: the temporary file is removed, the target never appears
    signal.signal(signal.SIGTERM, _interrupt)
    overrides = {n: getattr(args, n) for n in ("data_dir", "dsn", "database") if getattr(args, n)}
    storage = StorageSettings(**overrides)
    now_ms = time.time_ns() // 1_000_000
    try:
        request = ExportRequest(
            parse_time_ms(args.start, now_ms),
            parse_time_ms(args.end, now_ms),
            args.resolution,
            tuple(args.pools or ()),
            tuple(args.regions or ()),
            args.proxies,
            ExportFormat(args.format),
        )
    except (ExportRefused, argparse.ArgumentTypeError) as exc:
        print(f"proxywhirl-metrics export: {exc}", file=sys.stderr)
        return 2
    try:
        client = get_client(storage)
        prepared = prepare_export(
            client,
            storage.database,
            request,
            now_ms=now_ms,
            retention=Retention.from_settings(storage),
            proxy_ttl_days=storage.ttl_proxy_1m_days,
        )
        if args.output == "-":
            stream = prepared.stream(client)
            for chunk in stream:
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
            document: Any = prepared.metadata(stream.rows)
            if args.meta_stderr:
                print(json.dumps(document, sort_keys=True), file=sys.stderr)
        else:
            output = Path(args.output or f"export{request.fmt.suffix}")
            document = write_export_file(client, prepared, output)
            print(
                f"{output}: {document['rows']} rows from {prepared.plan.table} every "
                f"{prepared.plan.step_s} s, {len(document['incidents'])} incident(s); "
                f"metadata in {output.name}.meta.json",
                file=sys.stderr,
            )
    except StoreInUse:
        raise
    except (ExportRefused, StorageError) as exc:
        print(f"proxywhirl-metrics export: {exc}", file=sys.stderr)
        return 1
    return 0


_TIME_OPTIONS = frozenset({"--from", "--to"})


def join_relative_times(argv: Sequence[str]) -> list[str]:
    """``--from -90d`` -> ``--from=-90d`` (argparse reads ``-90d`` as an option)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        value = argv[i + 1] if i + 1 < len(argv) else ""
        if word in _TIME_OPTIONS and value.startswith("-") and _RELATIVE.match(value):
            out.append(f"{word}={value}")
            i += 2
            continue
        out.append(word)
        i += 1
    return out


def add_export_command(commands: Any) -> None:
    """Register ``export`` on the CLI's sub-parser set."""
    export = commands.add_parser(
        "export", help="a span of history as CSV, NDJSON or Parquet, with its metadata"
    )
    export.add_argument("--from", dest="start", required=True, help="RFC 3339, now, -90d, now-90d")
    export.add_argument("--to", dest="end", default="now", help="RFC 3339, now, -15m, now-15m")
    export.add_argument(
        "--resolution",
        default=AUTO,
        choices=[AUTO, *(r.value for r in Resolution)],
        help="tier (auto: as REST v1 series)",
    )
    export.add_argument("--pool", dest="pools", action="append", help="repeatable")
    export.add_argument("--region", dest="regions", action="append", help="repeatable")
    export.add_argument("--proxies", action="store_true", help="one row per proxy (proxy_1m)")
    export.add_argument("--format", default="csv", choices=[f.value for f in ExportFormat])
    export.add_argument("--output", help="file (default export.<format>), or - for stdout")
    export.add_argument("--meta-stderr", action="store_true", help="with -: metadata to stderr")
    export.add_argument("--data-dir", type=Path, help="embedded engine base directory")
    export.add_argument("--dsn", help="chdb:///path or http(s)://host:port")
    export.add_argument("--database", help="database name")
    export.set_defaults(handler=_cmd_export)
