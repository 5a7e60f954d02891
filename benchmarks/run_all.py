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
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_env import RESULTS_DIR, load_average, machine, versions  # noqa: E402
from benchmarks.report import (  # noqa: E402
    RESULT_HEADER,
    Metric,
    Ratio,
    Target,
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

DOC = ROOT / "docs" / "benchmarks.md"
PLOT = ROOT / "docs" / "benchmarks.png"
RUN_RESULTS = RESULTS_DIR / "run_all.json"


@dataclass(frozen=True)
class Bench:
    """One benchmark script as the suite runs it."""

    name: str
    script: str
    args: tuple[str, ...] = ()
    quick_args: tuple[str, ...] = ()
    results: str = ""  # results file name; default <script stem>.json
    metrics: tuple[Metric, ...] = ()
    uses: str = ""  # "backlog": gets --backlog; "bootstrap": gets --bootstrap
    repeat: bool = True  # False: repeats inside, run once
    timeout_s: float = 900.0
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def results_file(self) -> Path:
        return RESULTS_DIR / (self.results or f"{Path(self.script).stem}.json")


def _m(key: str, label: str, unit: str, *paths: str, higher: bool = True) -> Metric:
    return Metric(key, label, unit, paths, higher)


def _emit_metrics() -> tuple[Metric, ...]:
    out: list[Metric] = []
    for n in (1, 4, 8):
        for who in ("emit", "prometheus"):
            for q, label in (("p99_us", "p99"), ("p99_9_us", "p99.9")):
                out.append(
                    _m(
                        f"{who}_{n}t_{q}",
                        f"{'emit()' if who == 'emit' else 'prometheus-client'} {n} thr {label}",
                        "us",
                        f"{who}_{n}t.median.{q}",
                        f"{who}_{n}_thread{'s' if n > 1 else ''}.{q}",
                        higher=False,
                    )
                )
    return tuple(out)


EPS = "events/s"
SUITE: tuple[Bench, ...] = (
    Bench(
        "peer_floor",
        "benchmarks/peer_floor.py",
        metrics=(
            _m("events_per_s", "aiokafka + decode, floor", EPS, "drain.events_per_s"),
            _m("cpu_us", "CPU per event", "us", "drain.cpu_us_per_event", higher=False),
        ),
        uses="backlog",
    ),
    Bench(
        "worker_throughput",
        "benchmarks/worker_throughput.py",
        args=("--skip-live", "--events", "500000"),
        quick_args=("--skip-live", "--events", "300000"),
        metrics=(
            _m("events_per_s", "1 worker drains the demo fleet", EPS, "drain.events_per_s"),
            _m("cpu_us", "CPU per event", "us", "drain.cpu_us_per_event", higher=False),
            _m(
                "fleet_events_per_s",
                "1 worker, fleet scale",
                EPS,
                "drain_fleet.events_per_s",
                "fleet.drain.events_per_s",
                "fleet.events_per_s",
            ),
        ),
        uses="bootstrap",
    ),
    Bench(
        "worker_live",
        "benchmarks/worker_throughput.py",
        args=("--skip-drain", "--live-seconds", "30"),
        quick_args=("--skip-drain", "--live-seconds", "20"),
        results="worker_throughput.json",
        metrics=(
            _m(
                "stored_p99_s",
                "live 20k ev/s: event to stored p99",
                "s",
                "live.event_to_stored_s.p99",
                higher=False,
            ),
            _m(
                "window_p99_s",
                "live: window end to complete p99",
                "s",
                "live.window_end_to_complete_s.p99",
                higher=False,
            ),
        ),
        uses="bootstrap",
        repeat=False,
    ),
    Bench(
        "worker_scaling",
        "benchmarks/worker_scaling.py",
        metrics=(
            _m("w1_events_per_s", "1 worker process", EPS, "workers_1.events_per_s"),
            _m("w2_events_per_s", "2 worker processes", EPS, "workers_2.events_per_s"),
            _m("factor", "scaling factor 2 vs 1", "x", "scaling_factor"),
        ),
        uses="backlog",
    ),
    Bench(
        "peer_quix",
        "benchmarks/peer_quix.py",
        args=("--max-events", "200000"),
        quick_args=("--max-events", "50000"),
        metrics=(
            _m("events_eps", "Quix Streams, event per message", EPS, "events.events_per_s"),
            _m("envelopes_eps", "Quix Streams, envelopes", EPS, "envelopes.events_per_s"),
            _m(
                "events_cpu_us", "Quix event/msg CPU", "us", "events.cpu_us_per_event", higher=False
            ),
        ),
        uses="backlog",
    ),
    Bench(
        "peer_faust",
        "benchmarks/peer_faust.py",
        args=("--max-events", "30000"),
        quick_args=("--max-events", "10000"),
        metrics=(
            _m(
                "events_per_s", "Faust, event per record, windowed table", EPS, "drain.events_per_s"
            ),
            _m("cpu_us", "CPU per event", "us", "drain.cpu_us_per_event", higher=False),
        ),
        uses="backlog",
    ),
    Bench(
        "core_small",
        "benchmarks/core_throughput.py",
        args=("--profile", "small"),
        quick_args=("--profile", "small", "--repeat", "1"),
        results="core_throughput.json",
        metrics=(
            _m(
                "events_per_cpu_s",
                "core, demo mix",
                "events/CPU-s",
                "small.results.decode+aggregate.events_per_s_cpu",
            ),
        ),
        repeat=False,
    ),
    Bench(
        "core_fleet",
        "benchmarks/core_throughput.py",
        args=("--profile", "fleet"),
        quick_args=("--profile", "fleet", "--repeat", "1"),
        results="core_throughput.json",
        metrics=(
            _m(
                "events_per_cpu_s",
                "core, fleet 50x20x10k",
                "events/CPU-s",
                "fleet.results.decode+aggregate.events_per_s_cpu",
            ),
        ),
        repeat=False,
    ),
    Bench(
        "emit_cost",
        "benchmarks/emit_cost.py",
        quick_args=("--repeat", "1", "--calls", "100000"),
        metrics=_emit_metrics(),
        repeat=False,
    ),
    Bench(
        "proxywhirl_overhead",
        "benchmarks/proxywhirl_overhead.py",
        quick_args=("--pairs", "500", "--reps", "1"),
        metrics=(
            _m(
                "hook_cpu_us",
                "ProxyWhirl hook, added CPU/request",
                "us",
                "headline.end_to_end_added_cpu_us.integration_sync",
                "end_to_end.integration_sync.added_cpu_p50_us",
                higher=False,
            ),
            _m(
                "prometheus_cpu_us",
                "prometheus-client wrapper, added CPU/request",
                "us",
                "headline.end_to_end_added_cpu_us.prometheus_wrapper",
                "end_to_end.reference_prometheus.added_cpu_p50_us",
                higher=False,
            ),
            _m(
                "hook_isolated_us",
                "hook alone (isolated)",
                "us",
                "headline.isolated_added_cpu_us.integration",
                higher=False,
            ),
            _m(
                "prometheus_isolated_us",
                "prometheus wrapper alone (isolated)",
                "us",
                "headline.isolated_added_cpu_us.prometheus_wrapper",
                higher=False,
            ),
        ),
        repeat=False,
    ),
    Bench(
        "api_queries",
        "benchmarks/api_queries.py",
        args=("--duration-s", "40"),
        quick_args=("--days", "30", "--duration-s", "20"),
        metrics=(
            _m(
                "summary_p95_ms",
                "REST /summary p95",
                "ms",
                "endpoints.summary.p95_ms",
                higher=False,
            ),
            _m(
                "series_p95_ms",
                "REST 90-day /series one pool p95",
                "ms",
                "endpoints.series_90d.p95_ms",
                higher=False,
            ),
        ),
        repeat=False,
    ),
    Bench(
        "grafana_panels",
        "benchmarks/grafana_panels.py",
        metrics=(
            _m("p95_ms", "Grafana panel queries p95", "ms", "p95_ms", "all.p95_ms", higher=False),
        ),
        repeat=False,
    ),
    Bench(
        "dashboard_page",
        "benchmarks/dashboard_page.py",
        args=("--duration-s", "30"),
        quick_args=("--days", "7", "--duration-s", "15"),
        metrics=(
            _m(
                "grid_ms",
                "dashboard navigation to grid",
                "ms",
                "navigation_to_grid_ms",
                higher=False,
            ),
            _m(
                "api_p95_ms", "dashboard API p95 while refreshing", "ms", "api.p95_ms", higher=False
            ),
        ),
        repeat=False,
    ),
    Bench(
        "export_rate",
        "benchmarks/export_rate.py",
        args=("--days", "90"),
        quick_args=("--days", "7", "--pools", "10", "--regions", "5"),
        metrics=tuple(
            _m(f"{f}_rows_per_s", f"export {f}", "rows/s", f"results.{f}.rows_per_s")
            for f in ("csv", "ndjson", "parquet")
        ),
        repeat=False,
    ),
)

RATIOS = (
    Ratio(
        "worker / floor (aiokafka + decode)",
        "worker_throughput.events_per_s",
        "peer_floor.events_per_s",
    ),
    Ratio(
        "worker / Quix Streams, event per message",
        "worker_throughput.events_per_s",
        "peer_quix.events_eps",
    ),
    Ratio(
        "worker / Quix Streams, envelopes",
        "worker_throughput.events_per_s",
        "peer_quix.envelopes_eps",
    ),
    Ratio(
        "worker / Faust, event per record",
        "worker_throughput.events_per_s",
        "peer_faust.events_per_s",
    ),
    Ratio(
        "worker CPU per event / floor CPU per event",
        "worker_throughput.cpu_us",
        "peer_floor.cpu_us",
    ),
    Ratio(
        "2 workers / 1 worker (4 partitions)",
        "worker_scaling.w2_events_per_s",
        "worker_scaling.w1_events_per_s",
    ),
    *(
        Ratio(
            f"emit() / prometheus-client p99, {n} thr",
            f"emit_cost.emit_{n}t_p99_us",
            f"emit_cost.prometheus_{n}t_p99_us",
        )
        for n in (1, 4, 8)
    ),
    Ratio(
        "ProxyWhirl hook / prometheus-client wrapper, added CPU",
        "proxywhirl_overhead.hook_cpu_us",
        "proxywhirl_overhead.prometheus_cpu_us",
    ),
)

TARGETS = (
    Target("worker >= 500k events/s, demo fleet", "worker_throughput.events_per_s", ">=", 500_000),
    Target(
        "worker >= 250k events/s, fleet scale",
        "worker_throughput.fleet_events_per_s",
        ">=",
        250_000,
    ),
    Target(
        "worker within 2x of the floor",
        "worker_throughput.events_per_s",
        ">=",
        relative_to="peer_floor.events_per_s",
        factor=0.5,
    ),
    *(
        Target(f"emit() {label} <= {bound:g} us, {n} thr", f"emit_cost.emit_{n}t_{q}", "<=", bound)
        for n in (1, 4, 8)
        for q, label, bound in (("p99_us", "p99", 5.0), ("p99_9_us", "p99.9", 50.0))
    ),
    Target(
        "ProxyWhirl hook CPU <= prometheus-client wrapper",
        "proxywhirl_overhead.hook_cpu_us",
        "<=",
        relative_to="proxywhirl_overhead.prometheus_cpu_us",
    ),
    Target("live: window end to complete <= window + 2 s", "worker_live.window_p99_s", "<=", 12.0),
    Target("REST /summary p95 <= 250 ms (fleet-wide)", "api_queries.summary_p95_ms", "<=", 250.0),
    Target("REST /series one pool p95 <= 100 ms", "api_queries.series_p95_ms", "<=", 100.0),
)

THROUGHPUT_PLOT = (
    ("floor: aiokafka + decode", "peer_floor.events_per_s"),
    ("worker, 1 (drain)", "worker_throughput.events_per_s"),
    ("worker, 1 process (scaling)", "worker_scaling.w1_events_per_s"),
    ("workers, 2 processes", "worker_scaling.w2_events_per_s"),
    ("Quix Streams, envelopes", "peer_quix.envelopes_eps"),
    ("Quix Streams, event/message", "peer_quix.events_eps"),
    ("Faust, event/record", "peer_faust.events_per_s"),
)
LATENCY_PLOT = tuple(
    (f"{who} {n} thr {label}", f"emit_cost.{key}_{n}t_{q}")
    for n in (1, 4, 8)
    for who, key in (("emit()", "emit"), ("prometheus", "prometheus"))
    for q, label in (("p99_us", "p99"), ("p99_9_us", "p99.9"))
)

METHOD = (
    "`make bench` (benchmarks/run_all.py) started one Kafka broker and wrote one backlog of "
    "demo-fleet events (benchmarks/peer_backlog.py: the simulator's demo fleet, seed 3, as "
    "500-event envelopes and as one JSON event per message, 4 partitions, zstd). The floor, "
    "Quix Streams, Faust and the scaling runs read that backlog; worker_throughput.py writes the "
    "same events (same simulator and seed) to its own topic on the same broker. Each benchmark "
    "ran as its own process, {repeats} time(s) where the runner repeats it (the others repeat "
    "inside: emit_cost, core_throughput, proxywhirl_overhead), one after another; the load "
    "average was read before and after each. Medians and min - max spreads are over the "
    "repeats; ratios divide medians of this run. Wall-clock rates are absolute numbers of this "
    "machine; CPU per event is the process's CPU time."
)


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
        with kafka_broker(args.bootstrap if needs_broker else "unused") as bootstrap:
            if any(b.uses == "backlog" for b in benches):
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
