"""``proxywhirl-metrics alerts ...``: rule file commands the CLI wires in.

- ``alerts validate FILE``: validate a rules file; prints a summary and exits 0, or prints every
  problem (file, line, rule, field) to stderr and exits 1.
- ``alerts export-prometheus [--rules FILE] [--window-s N] [--output FILE]``: render the
  threshold rules as Prometheus alerting rules over the gauges of ``/metrics`` (see
  :mod:`stream_app.alerting.prometheus_rules`); without ``--rules`` the configured rules file
  (``PWM_ALERTING_RULES_FILE``) is used. Skipped rules are listed on stderr.

:func:`add_alerts_commands` registers both on an argparse sub-parser set; the handlers return
the process exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path
from typing import TextIO

from stream_app.alerting.errors import RulesFileError
from stream_app.alerting.prometheus_rules import export_rules
from stream_app.alerting.rules_watcher import load_rules_file
from stream_app.alerting.settings import AlertingSettings

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


def add_alerts_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``alerts validate`` and ``alerts export-prometheus``; each sets ``args.handler``."""
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


def main(argv: list[str] | None = None) -> int:
    """Run the alerts commands standalone (``python -m stream_app.cli_alerts alerts ...``)."""
    parser = argparse.ArgumentParser(prog="proxywhirl-metrics")
    add_alerts_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
