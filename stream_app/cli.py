"""The ``proxywhirl-metrics`` command line.

Subcommands: ``serve`` (HTTP ingest, pipeline, embedded ClickHouse and the API in one process),
``demo`` (``serve`` plus a simulated fleet), ``migrate``
(apply or roll back ClickHouse migrations), ``report`` (stored totals), ``api`` (/metrics and
health over the stored windows), ``alerts
validate|export-prometheus|history``, and the distributed runtime's ``worker``, ``simulate`` and
``topics create`` (:mod:`stream_app.cli_worker`). Every command
builds its settings (environment + flags), validates them at start-up and exits non-zero with a
clear message when they are wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from stream_app.cli_alerts import add_alerts_commands
from stream_app.cli_export import add_export_command, join_relative_times
from stream_app.cli_worker import add_worker_commands
from stream_app.logging_setup import configure_logging
from stream_app.serve.errors import ListenFailed
from stream_app.storage.errors import StoreInUse
from stream_app.storage.store_lock import name_process
from stream_app.storage.tables import Resolution

Handler = Callable[[argparse.Namespace], int]


def _overrides(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def _cmd_demo(args: argparse.Namespace) -> int:
    from stream_app.alerting.errors import RulesFileError
    from stream_app.alerting.rules_watcher import load_rules_file
    from stream_app.alerting.settings import AlertingSettings
    from stream_app.embedded.alerting import demo_rules_file
    from stream_app.embedded.demo import run_demo
    from stream_app.embedded.settings import EmbeddedSettings
    from stream_app.storage.settings import StorageSettings

    settings = EmbeddedSettings(**_overrides(args, ["data_dir", "duration_s", "scenario", "seed"]))
    storage = StorageSettings(data_dir=settings.data_dir)
    alerting = AlertingSettings(data_dir=settings.data_dir, **_overrides(args, ["rules_file"]))
    try:
        if settings.alerts:  # refuse a broken rules file before opening anything
            load_rules_file(demo_rules_file(alerting))
        asyncio.run(run_demo(settings, storage, alerting=alerting, http_port=args.port))
    except RulesFileError as exc:
        print(f"proxywhirl-metrics: invalid rules file {exc.path}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from api.settings import ApiSettings
    from stream_app.alerting.errors import RulesFileError
    from stream_app.alerting.rules_watcher import load_rules_file
    from stream_app.alerting.settings import AlertingSettings
    from stream_app.embedded.settings import EmbeddedSettings
    from stream_app.serve.process import ServeOptions, run_serve
    from stream_app.serve.settings import IngestSettings
    from stream_app.storage.settings import StorageSettings

    settings = EmbeddedSettings(**_overrides(args, ["data_dir"]))
    storage = StorageSettings(**_overrides(args, ["data_dir", "dsn", "database"]))
    alerting = AlertingSettings(data_dir=settings.data_dir, **_overrides(args, ["rules_file"]))
    options = ServeOptions(
        data_dir=settings.data_dir,
        pipeline=settings.pipeline,
        storage=storage,
        api=ApiSettings(**_overrides(args, ["host", "port"])),
        ingest=IngestSettings(),
        alerting=alerting,
        rules_file=alerting.rules_file,
    )
    try:
        if options.rules_file is not None:
            load_rules_file(options.rules_file)
        if not storage.embedded:
            from api.serve import serve

            # distributed mode: the stateless API; ingest forwards to Kafka when configured
            serve(options.api, storage, options.ingest, rules_path=options.rules_file)
            return 0
        asyncio.run(run_serve(options, out=sys.stdout))
    except RulesFileError as exc:
        print(f"proxywhirl-metrics: invalid rules file {exc.path}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    return 0


def _cmd_migrate(args: argparse.Namespace) -> int:
    from stream_app.storage.client import get_client
    from stream_app.storage.migrate import Migrator
    from stream_app.storage.settings import StorageSettings

    storage = StorageSettings(**_overrides(args, ["data_dir", "dsn", "database"]))
    migrator = Migrator(get_client(storage), storage)
    if args.rollback is not None:
        migrator.rollback(args.rollback, take_over=args.take_over)
    else:
        migrator.migrate(args.target, take_over=args.take_over)
    for status in migrator.status():
        mark = "applied" if status.applied else "pending"
        print(f"{status.version:04d} {status.name:<32} {mark}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    import time

    from stream_app.report import build_report, write_report
    from stream_app.storage.queries import StorageQueries
    from stream_app.storage.settings import StorageSettings
    from stream_app.storage.tables import Resolution

    storage = StorageSettings(**_overrides(args, ["data_dir", "dsn", "database"]))
    end_ms = time.time_ns() // 1_000_000 + 60_000
    start_ms = end_ms - int(args.last_s * 1000) - 60_000
    rows = build_report(
        StorageQueries.from_settings(storage), start_ms, end_ms, Resolution(args.resolution)
    )
    write_report(rows, sys.stdout, as_json=args.json)
    return 0


def _cmd_api(args: argparse.Namespace) -> int:
    from api.serve import serve
    from api.settings import ApiSettings
    from stream_app.serve.settings import IngestSettings
    from stream_app.storage.settings import StorageSettings

    settings = ApiSettings(**_overrides(args, ["host", "port"]))
    storage = StorageSettings(**_overrides(args, ["data_dir", "dsn", "database"]))
    serve(settings, storage, IngestSettings())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="proxywhirl-metrics", description="Stream analytics for ProxyWhirl proxy fleets"
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    parser.add_argument("--log-json", action="store_true", help="log as JSON lines")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="simulated fleet + in-process pipeline + embedded DB")
    demo.add_argument("--duration", dest="duration_s", type=float, help="stop after N seconds")
    demo.add_argument("--data-dir", type=Path, help="where history is kept (default ./data)")
    demo.add_argument("--scenario", type=Path, help="fleet scenario YAML")
    demo.add_argument("--seed", type=int, help="simulator seed")
    demo.add_argument(
        "--rules", dest="rules_file", type=Path, help="alert rules YAML (default: demo rules)"
    )
    demo.add_argument(
        "--port", type=int, default=8000, help="serve the API on this port (0: no HTTP)"
    )
    demo.set_defaults(handler=_cmd_demo)

    serve = commands.add_parser(
        "serve", help="HTTP ingest + pipeline + embedded store + API in one process"
    )
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 8000; 0: any free)")
    serve.add_argument("--data-dir", type=Path, help="where history is kept (default ./data)")
    serve.add_argument("--dsn", help="chdb:///path, or http(s)://host:port (stateless API)")
    serve.add_argument("--database", help="database name")
    serve.add_argument("--rules", dest="rules_file", type=Path, help="alert rules YAML")
    serve.set_defaults(handler=_cmd_serve)

    migrate = commands.add_parser("migrate", help="apply (or roll back) ClickHouse migrations")
    migrate.add_argument("--data-dir", type=Path, help="embedded engine base directory")
    migrate.add_argument("--dsn", help="chdb:///path or http(s)://host:port")
    migrate.add_argument("--database", help="database name")
    migrate.add_argument("--target", type=int, help="migrate up to this version")
    migrate.add_argument("--rollback", type=int, help="roll back down to this version")
    migrate.add_argument(
        "--take-over",
        action="store_true",
        help="clear the in-progress mark a crashed run left (only when no other run is going on)",
    )
    migrate.set_defaults(handler=_cmd_migrate)

    report = commands.add_parser("report", help="stored totals per pool and region")
    report.add_argument("--data-dir", type=Path, help="embedded engine base directory")
    report.add_argument("--dsn", help="chdb:///path or http(s)://host:port")
    report.add_argument("--database", help="database name")
    report.add_argument("--last", dest="last_s", type=float, default=3600.0, help="seconds back")
    report.add_argument(
        "--resolution", default="10s", choices=[r.value for r in Resolution], help="rollup table"
    )
    report.add_argument("--json", action="store_true", help="print JSON")
    report.set_defaults(handler=_cmd_report)

    api = commands.add_parser("api", help="serve /metrics (window gauges), /healthz and /readyz")
    api.add_argument("--host", help="address to bind (default 127.0.0.1)")
    api.add_argument("--port", type=int, help="port to bind (default 8000)")
    api.add_argument("--data-dir", type=Path, help="embedded engine base directory")
    api.add_argument("--dsn", help="chdb:///path or http(s)://host:port")
    api.add_argument("--database", help="database name")
    api.set_defaults(handler=_cmd_api)

    add_alerts_commands(commands)
    add_export_command(commands)
    add_worker_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(join_relative_times(sys.argv[1:] if argv is None else argv))
    configure_logging(args.log_level, json_lines=args.log_json)
    handler: Handler = args.handler
    words = ["proxywhirl-metrics", args.command, getattr(args, "alerts_command", None)]
    name_process(" ".join(w for w in words if w))
    try:
        return handler(args)
    except ValidationError as exc:
        print(f"proxywhirl-metrics: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    except (StoreInUse, ListenFailed) as exc:  # one line, no traceback
        print(f"proxywhirl-metrics: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
