"""``proxywhirl-metrics alerts ...``: rule file commands the CLI wires in.

- ``alerts history [--data-dir DIR | --dsn DSN] [--database DB] [--last S] [--json]``: the
  alert events stored in ClickHouse (``alert_history``) whose incident overlaps the last ``S``
  seconds, oldest first (:func:`stream_app.alerting.history.read_alert_history`).
- ``alerts validate FILE``: validate a rules file; prints a summary and exits 0, or prints every
  problem (file, line, rule, field) to stderr and exits 1.
- ``alerts export-prometheus [--rules FILE] [--window-s N] [--output FILE]``: render the
  threshold rules as Prometheus alerting rules over the gauges of ``/metrics`` (see
  :mod:`stream_app.alerting.prometheus_rules`); without ``--rules`` the configured rules file
  (``PWM_ALERTING_RULES_FILE``) is used. Skipped rules are listed on stderr.

:func:`add_alerts_commands` registers them on an argparse sub-parser set; the handlers return
the process exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from stream_app.alerting.errors import AlertingError, RulesFileError
from stream_app.alerting.history import read_alert_history
from stream_app.alerting.prometheus_rules import export_rules
from stream_app.alerting.rules_watcher import load_rules_file
from stream_app.alerting.settings import AlertingSettings
from stream_app.storage.client import get_client
from stream_app.storage.errors import StorageError, StoreInUse
from stream_app.storage.settings import StorageSettings

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


def alerts_validate(path: Path, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Validate ``path``; 0 when valid, 1 with every problem printed otherwise."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        rule_set = load_rules_file(path)
    except RulesFileError as exc:
        print(f"{path}: INVALID ({len(exc.problems)} problem(s))", file=err)
        for problem in exc.problems:
            print(f"  {problem}", file=err)
        return EXIT_INVALID
    kinds = Counter(r.kind for r in rule_set.rules)
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) or "no rules"
    print(
        f"{path}: OK, {len(rule_set.rules)} rule(s) ({summary}), "
        f"{len(rule_set.silences)} silence(s), sha256 {rule_set.digest[:12]}",
        file=out,
    )
    return EXIT_OK


def alerts_export_prometheus(
    rules: Path | None,
    *,
    window_s: int = 10,
    output: Path | None = None,
    settings: AlertingSettings | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Write the Prometheus rules to ``output`` (or stdout); 0 on success."""
    out = out or sys.stdout
    err = err or sys.stderr
    path = rules
    if path is None:
        path = (settings or AlertingSettings()).rules_file
    if path is None:
        print("no rules file: pass --rules FILE or set PWM_ALERTING_RULES_FILE", file=err)
        return EXIT_USAGE
    if window_s < 1:
        print("--window-s must be >= 1", file=err)
        return EXIT_USAGE
    try:
        rule_set = load_rules_file(path)
    except RulesFileError as exc:
        print(f"{path}: INVALID, nothing exported", file=err)
        for problem in exc.problems:
            print(f"  {problem}", file=err)
        return EXIT_INVALID
    export = export_rules(rule_set, window_s=window_s)
    text = export.to_yaml()
    if output is None:
        out.write(text)
    else:
        tmp = output.with_name(output.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, output)
    for rule_id, reason in export.skipped:
        print(f"skipped rule {rule_id}: {reason}", file=err)
    print(f"exported {len(export.exported)} rule(s), skipped {len(export.skipped)}", file=err)
    return EXIT_OK


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _history_line(row: dict[str, Any]) -> str:
    starts = _jsonable(row["starts_at"])
    ends = _jsonable(row["ends_at"]) if row["ends_at"] is not None else "-"
    where = "/".join(p for p in (row["pool"], row["region"]) if p) or "fleet"
    if row["proxy_id"]:
        where += f" proxy {row['proxy_id'][:12]}"
    value = "n/a" if row["value"] is None else f"{row['value']:.4g}"
    limit = "" if row["threshold"] is None else f" (threshold {row['threshold']:.4g})"
    summary = row["annotations"].get("summary", "")
    return (
        f"{starts} {ends} {row['status']:<8} {row['alertname']} [{row['severity']}] {where} "
        f"value {value}{limit} {summary}".rstrip()
    )


def alerts_history(
    storage: StorageSettings,
    *,
    last_s: float = 3600.0,
    as_json: bool = False,
    limit: int = 10_000,
    now: datetime | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Print the stored alert events of the last ``last_s`` seconds; 0, or 1 when unreadable."""
    out = out or sys.stdout
    err = err or sys.stderr
    if last_s <= 0 or limit < 1:
        print("--last must be > 0 and --limit >= 1", file=err)
        return EXIT_USAGE
    to_time = now or datetime.now(UTC)
    try:
        rows = read_alert_history(
            get_client(storage),
            storage.database,
            from_time=to_time - timedelta(seconds=last_s),
            to_time=to_time,
            limit=limit,
        )
    except StoreInUse:
        raise  # the command line says it in one line (exit 2)
    except (AlertingError, StorageError) as exc:
        print(f"alert history of {storage.redacted_dsn()} not readable: {exc}", file=err)
        return EXIT_INVALID
    if as_json:
        json.dump([_jsonable(row) for row in rows], out, indent=2)
        out.write("\n")
    else:
        for row in rows:
            out.write(_history_line(row) + "\n")
        print(f"{len(rows)} alert event(s)", file=err)
    return EXIT_OK


def _storage_overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = ("data_dir", "dsn", "database")
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def add_alerts_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``alerts validate``, ``export-prometheus`` and ``history``; each sets
    ``args.handler``."""
    alerts = subparsers.add_parser("alerts", help="alert rule file commands")
    commands = alerts.add_subparsers(dest="alerts_command", required=True)

    validate = commands.add_parser("validate", help="validate a rules file")
    validate.add_argument("file", type=Path)
    validate.set_defaults(handler=lambda args: alerts_validate(args.file))

    export = commands.add_parser(
        "export-prometheus", help="render threshold rules as Prometheus alerting rules"
    )
    export.add_argument("--rules", type=Path, default=None, help="rules file (default: settings)")
    export.add_argument("--window-s", type=int, default=10, help="window size of the gauges")
    export.add_argument("--output", type=Path, default=None, help="file to write (default stdout)")
    export.set_defaults(
        handler=lambda args: alerts_export_prometheus(
            args.rules, window_s=args.window_s, output=args.output
        )
    )

    history = commands.add_parser("history", help="alert events stored in ClickHouse")
    history.add_argument("--data-dir", type=Path, help="embedded engine base directory")
    history.add_argument("--dsn", help="chdb:///path or http(s)://host:port")
    history.add_argument("--database", help="database name")
    history.add_argument("--last", dest="last_s", type=float, default=3600.0, help="seconds back")
    history.add_argument("--limit", type=int, default=10_000, help="at most this many events")
    history.add_argument("--json", action="store_true", help="print JSON")
    history.set_defaults(
        handler=lambda args: alerts_history(
            StorageSettings(**_storage_overrides(args)),
            last_s=args.last_s,
            as_json=args.json,
            limit=args.limit,
        )
    )


def main(argv: list[str] | None = None) -> int:
    """Run the alerts commands standalone (``python -m stream_app.cli_alerts alerts ...``)."""
    parser = argparse.ArgumentParser(prog="proxywhirl-metrics")
    add_alerts_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
