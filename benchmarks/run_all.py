"""``make bench``: the benchmark suite and its peers in one run, on one broker, on the same data.

1. Starts one Kafka broker (tests/support, Maven jars; or ``--bootstrap``) and writes one backlog
   of demo-fleet events (``peer_backlog.py``: envelopes, and one event per message).
2. Runs every benchmark of :data:`SUITE` as its own process, ``--repeats`` times (1 with
   ``--quick``; scripts that repeat inside, such as ``emit_cost.py``, run once), recording the
   load average before and after each, and reads the numbers from the JSON it wrote.
3. Prints a table (median and min - max of the repeats), the ratios against the peers and each
   target (issue 12 and docs/benchmarks.md) met or not; writes benchmarks/results/run_all.json,
   the generated section of docs/benchmarks.md (between ``<!-- bench:begin -->`` and
   ``<!-- bench:end -->``; the hand-written analysis around it is kept) and docs/benchmarks.png.

Run on a quiet machine: the numbers are absolute on this machine, the ratios are of one run.

Run: .venv/bin/python -m benchmarks.run_all [--quick] [--only NAME[,NAME]] [--repeats N]
A run with ``--only`` leaves docs/ alone unless ``--docs`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_env import RESULTS_DIR, load_average, machine, versions  # noqa: E402
from benchmarks.report import (  # noqa: E402
    RESULT_HEADER,
    evaluate,
    markdown_section,
    ratios,
    replace_section,
    result_rows,
    summaries,
    target_rows,
    text_table,
    write_plot,
)
from benchmarks.suite import (  # noqa: E402
    LATENCY_PLOT,
    METHOD,
    RATIOS,
    SUITE,
    TARGETS,
    THROUGHPUT_PLOT,
    Bench,
)

DOC = ROOT / "docs" / "benchmarks.md"
RUN_RESULTS = RESULTS_DIR / "run_all.json"


def _kafka_version() -> str | None:
    try:
        from tests.support.kafka_dist import kafka_distribution
        from tests.support.settings import HarnessSettings

        return str(kafka_distribution(HarnessSettings()).version)
    except Exception:  # a version we cannot tell is left out, not a failed run
        return None


def _clickhouse_version() -> str | None:
    try:
        import chdb

        return str(chdb.query("SELECT version()", "CSV")).strip().strip('"')  # type: ignore[no-untyped-call]
    except Exception:
        return None


def _quix_versions() -> dict[str, str]:
    try:
        from benchmarks.peer_quix import quix_versions

        return quix_versions()
    except Exception:
        return {}


def run_versions() -> dict[str, str]:
    out = versions()
    extra = {
        "Kafka": _kafka_version(),
        "ClickHouse (chDB)": _clickhouse_version(),
        **{f"{k} (.venv-quix)": v for k, v in _quix_versions().items()},
    }
    out.update({k: v for k, v in extra.items() if v})
    return out


def run_one(
    bench: Bench, quick: bool, backlog: Path | None, bootstrap: str | None
) -> dict[str, Any]:
    """One run of one benchmark script: its metrics, or the error it ended with."""
    cmd = [sys.executable, str(ROOT / bench.script), *(bench.quick_args if quick else bench.args)]
    if bench.uses == "backlog" and backlog is not None:
        cmd += ["--backlog", str(backlog)]
    if bench.uses == "bootstrap" and bootstrap is not None:
        cmd += ["--bootstrap", bootstrap]
    env = {**os.environ, "PYTHONPATH": str(ROOT), **bench.extra_env}
    rep: dict[str, Any] = {"command": " ".join(cmd[1:]), "load_before": load_average()}
    started = time.perf_counter()
    before = bench.results_file.stat().st_mtime if bench.results_file.exists() else None
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=bench.timeout_s
        )
    except subprocess.TimeoutExpired:
        rep["error"] = f"timed out after {bench.timeout_s:.0f} s"
        proc = None
    rep["seconds"] = round(time.perf_counter() - started, 1)
    rep["load_after"] = load_average()
    if proc is not None and proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        rep["error"] = f"exit {proc.returncode}: " + " / ".join(tail)
    elif proc is not None:
        fresh = bench.results_file.exists() and bench.results_file.stat().st_mtime != before
        if not fresh:
            rep["error"] = f"no new {bench.results_file.name}"
        else:
            from benchmarks.report import extract

            doc = json.loads(bench.results_file.read_text())
            rep["metrics"] = extract(doc, bench.metrics)
    return rep


def select(names: Sequence[str] | None) -> list[Bench]:
    if not names:
        return list(SUITE)
    known = {b.name: b for b in SUITE}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; known: {sorted(known)}")
    return [known[n] for n in names]


def report(run: dict[str, Any], docs: Path | None) -> None:
    metrics = {b.name: b.metrics for b in SUITE}
    found = summaries(run)
    print()
    print(text_table(RESULT_HEADER, result_rows(run, metrics)))
    print()
    print(
        text_table(
            ("ratio", "value"), [[a, f"{b:.2f}" if b else "-"] for a, b in ratios(found, RATIOS)]
        )
    )
    print()
    print(
        text_table(
            ("target", "median", "bound", "status", "how far"),
            target_rows(evaluate(found, TARGETS)),
        )
    )
    if docs is None:
        return
    plot = docs.with_suffix(".png")
    drawn = write_plot(
        found,
        THROUGHPUT_PLOT,
        LATENCY_PLOT,
        plot,
        f"make bench {run['started_at']} ({run['mode']}), {run['machine'].get('cpu_model')}, "
        f"{run['machine'].get('logical_cpus')} CPUs",
    )
    section = markdown_section(run, metrics, RATIOS, TARGETS, plot.name if drawn else None)
    text = docs.read_text() if docs.exists() else "# Benchmarks\n"
    docs.write_text(replace_section(text, section))
    print(
        f"\nwritten {docs.relative_to(ROOT) if docs.is_relative_to(ROOT) else docs}"
        + (f", {plot.name}" if drawn else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 repeat, smaller parameters")
    parser.add_argument("--only", action="append", help="benchmark name(s), comma-separated")
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (1 with --quick)")
    parser.add_argument(
        "--events", type=int, default=None, help="backlog events (500k; 200k quick)"
    )
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    parser.add_argument("--docs", type=Path, default=None, help=f"default {DOC.relative_to(ROOT)}")
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args()
    if args.list:
        for b in SUITE:
            print(f"{b.name:22} {b.script} {' '.join(b.args)}")
        return
    only = [n for item in args.only or [] for n in item.split(",") if n]
    benches = select(only)
    repeats = args.repeats or (1 if args.quick else 3)
    events = args.events or (200_000 if args.quick else 500_000)
    docs = None if args.no_docs or (only and args.docs is None) else (args.docs or DOC)

    from benchmarks.peer_backlog import kafka_broker, write_backlog

    run: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "mode": f"{'quick' if args.quick else 'full'}, {repeats} repeat(s)",
        "machine": machine(),
        "versions": run_versions(),
        "method": METHOD.format(repeats=repeats),
        "load_before": load_average(),
        "benchmarks": {},
    }
    wall0 = time.perf_counter()
    needs_broker = any(b.uses for b in benches)
    with tempfile.TemporaryDirectory(prefix="pwm-bench-run-") as work:
        manifest: Path | None = None
        broker = kafka_broker(args.bootstrap) if needs_broker else contextlib.nullcontext(None)
        with broker as bootstrap:
            if bootstrap is not None and any(b.uses == "backlog" for b in benches):
                backlog = asyncio.run(write_backlog(bootstrap, events))
                manifest = Path(work) / "backlog.json"
                backlog.save(manifest)
                run["backlog"] = {
                    "events": backlog.events,
                    "records": backlog.envelope_records,
                    "partitions": backlog.partitions,
                    "fill_s": backlog.fill_s,
                }
                print(
                    f"backlog: {backlog.events} events, {backlog.envelope_records} envelopes, "
                    f"written in {backlog.fill_s} s",
                    flush=True,
                )
            for bench in benches:
                entry: dict[str, Any] = {"script": bench.script, "repeats": []}
                run["benchmarks"][bench.name] = entry
                if not (ROOT / bench.script).exists():
                    entry["skipped"] = f"{bench.script} does not exist"
                    print(f"{bench.name}: skipped ({entry['skipped']})", flush=True)
                    continue
                for i in range(repeats if bench.repeat else 1):
                    rep = run_one(bench, args.quick, manifest, bootstrap)
                    entry["repeats"].append(rep)
                    status = rep.get("error") or json.dumps(rep.get("metrics"))
                    print(
                        f"{bench.name} #{i + 1} ({rep['seconds']} s, load "
                        f"{rep['load_before'][0]} -> {rep['load_after'][0]}): {status}",
                        flush=True,
                    )
    run["wall_s"] = round(time.perf_counter() - wall0, 1)
    run["load_after"] = load_average()
    run["python_executable"] = platform.python_implementation()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    RUN_RESULTS.write_text(json.dumps(run, indent=2) + "\n")
    report(run, docs)
    print(f"run_all: {run['wall_s'] / 60:.1f} min; results in {RUN_RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
