"""The `make bench` runner's report (benchmarks/report.py, benchmarks/run_all.py) on canned results.

No benchmark runs here: the medians, spreads, ratios, targets, tables and the generated section
of docs/benchmarks.md are pure functions of the results the scripts write.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from benchmarks import suite
from benchmarks.report import (
    BEGIN,
    END,
    Metric,
    Ratio,
    Target,
    evaluate,
    extract,
    lookup,
    markdown_section,
    ratios,
    replace_section,
    result_rows,
    summaries,
)

REPO = Path(__file__).resolve().parents[2]


def _rep(metrics: dict[str, float], load: float = 0.5, error: str | None = None) -> dict[str, Any]:
    rep: dict[str, Any] = {
        "metrics": metrics,
        "load_before": [load] * 3,
        "load_after": [load + 1] * 3,
    }
    if error:
        rep = {"error": error, "load_before": [load] * 3, "load_after": [load] * 3}
    return rep


def _run() -> dict[str, Any]:
    return {
        "started_at": "2026-12-08 02:05 UTC",
        "mode": "full, 3 repeat(s)",
        "wall_s": 600.0,
        "machine": {"cpu_model": "AMD EPYC", "logical_cpus": 2, "ram_gib": 24.0, "kernel": "6.18"},
        "versions": {"python": "3.11.7", "Kafka": "4.4.0", "quixstreams (.venv-quix)": "3.28.1"},
        "method": "Each benchmark ran 3 times.",
        "load_before": [0.1, 0.2, 0.3],
        "load_after": [1.5, 1.0, 0.5],
        "benchmarks": {
            "peer_floor": {
                "repeats": [_rep({"events_per_s": v}) for v in (1_000_000, 900_000, 1_100_000)]
            },
            "worker_throughput": {
                "repeats": [
                    _rep({"events_per_s": 300_000, "cpu_us": 3.0}, load=0.2),
                    _rep({"events_per_s": 200_000, "cpu_us": 3.4}, load=0.9),
                    _rep({}, error="exit 1: boom"),
                ]
            },
            "grafana_panels": {
                "repeats": [],
                "skipped": "benchmarks/grafana_panels.py does not exist",
            },
        },
    }


METRICS = {
    "peer_floor": (Metric("events_per_s", "floor", "events/s", ("drain.events_per_s",)),),
    "worker_throughput": (
        Metric("events_per_s", "worker", "events/s", ("drain.events_per_s",)),
        Metric("cpu_us", "CPU per event", "us", ("drain.cpu_us_per_event",), False),
    ),
    "grafana_panels": (Metric("p95_ms", "panels", "ms", ("p95_ms",), False),),
}
TARGETS = (
    Target("worker >= 500k", "worker_throughput.events_per_s", ">=", 500_000),
    Target(
        "within 2x of floor",
        "worker_throughput.events_per_s",
        ">=",
        relative_to="peer_floor.events_per_s",
        factor=0.5,
    ),
    Target("CPU <= 5 us", "worker_throughput.cpu_us", "<=", 5.0),
    Target("panels <= 100 ms", "grafana_panels.p95_ms", "<=", 100.0),
)
RATIOS = (Ratio("worker / floor", "worker_throughput.events_per_s", "peer_floor.events_per_s"),)


def test_medians_and_spreads_are_over_the_successful_repeats() -> None:
    found = summaries(_run())
    floor = found["peer_floor.events_per_s"]
    assert (floor.median, floor.low, floor.high, floor.n) == (1_000_000, 900_000, 1_100_000, 3)
    worker = found["worker_throughput.events_per_s"]  # the failed third repeat is not a zero
    assert (worker.median, worker.low, worker.high, worker.n) == (250_000, 200_000, 300_000, 2)
    assert "grafana_panels.p95_ms" not in found


def test_targets_are_met_missed_by_how_much_or_not_measured() -> None:
    results = {r.label: r for r in evaluate(summaries(_run()), TARGETS)}
    assert results["worker >= 500k"].met is False
    assert results["worker >= 500k"].by == "0.50x of the bound"
    within = results["within 2x of floor"]  # 250k against half the floor's 1M median
    assert (within.met, within.bound, within.by) == (False, 500_000, "0.50x of the bound")
    assert results["CPU <= 5 us"].met is True
    assert results["panels <= 100 ms"].met is None
    assert results["panels <= 100 ms"].by == "not measured"


def test_ratios_divide_the_medians_of_the_run() -> None:
    assert ratios(summaries(_run()), RATIOS) == [("worker / floor", 0.25)]
    missing = Ratio("x", "worker_throughput.events_per_s", "peer_quix.events_eps")
    assert ratios(summaries(_run()), [missing]) == [("x", None)]


def test_rows_name_failures_and_skipped_benchmarks() -> None:
    rows = result_rows(_run(), METRICS)
    worker = [r for r in rows if r[0] == "worker_throughput"]
    assert worker[0][1:5] == ["worker (events/s)", "250,000", "200,000 - 300,000", "2"]
    assert worker[0][5] == "0.2-0.9 -> 0.5-1.9"  # load before -> after, every repeat
    assert worker[-1][1] == "(not measured)"
    assert "boom" in worker[-1][5]
    assert rows[-1][:2] == ["grafana_panels", "(not measured)"]
    assert "does not exist" in rows[-1][5]


def test_extract_follows_dotted_paths_and_keys_with_dots() -> None:
    doc = {"drain": {"events_per_s": 5}, "small": {"decode+aggregate": {"x": 1.5}}, "a.b": {"c": 7}}
    assert lookup(doc, "a.b.c") == 7
    metrics = [
        Metric("eps", "", "", ("missing.path", "drain.events_per_s")),
        Metric("x", "", "", ("small.decode+aggregate.x",)),
        Metric("none", "", "", ("drain.nothing",)),
    ]
    assert extract(doc, metrics) == {"eps": 5.0, "x": 1.5}
    grafana = {
        "results": {
            "a 90d fleet": {"p95": 80},
            "b 12mo fleet": {"p95": 300},
            "a 90d one pool": {"p95": 900},
        }
    }
    assert lookup(grafana, "results.* fleet.p95") == 300  # the worst of the matching keys
    assert lookup(grafana, "results.* one pool.p95") == 900
    assert lookup(grafana, "results.* none.p95") is None


def test_the_suite_reads_the_shapes_the_scripts_write() -> None:
    """run_all's metric paths against the JSON shapes of emit_cost.py and proxywhirl_overhead.py."""
    emit = next(b for b in suite.SUITE if b.name == "emit_cost")
    doc = {
        "emit_1t": {"median": {"p99_us": 4.0, "p99_9_us": 60.0}},
        "prometheus_1t": {"median": {"p99_us": 8.0, "p99_9_us": 30.0}},
    }
    got = extract(doc, emit.metrics)
    assert got == {
        "emit_1t_p99_us": 4.0,
        "emit_1t_p99_9_us": 60.0,
        "prometheus_1t_p99_us": 8.0,
        "prometheus_1t_p99_9_us": 30.0,
    }
    run = {"benchmarks": {"emit_cost": {"repeats": [{"metrics": got}]}}}
    status = {r.label: r.met for r in evaluate(summaries(run), suite.TARGETS)}
    assert status["emit() p99 <= 5 us, 1 thr"] is True
    assert status["emit() p99.9 <= 50 us, 1 thr"] is False
    assert status["emit() p99 <= 5 us, 8 thr"] is None
    pw = next(b for b in suite.SUITE if b.name == "proxywhirl_overhead")
    head = {"end_to_end_added_cpu_us": {"integration_sync": 9.6, "prometheus_wrapper": 6.7}}
    got = extract({"headline": head}, pw.metrics)
    run = {"benchmarks": {"proxywhirl_overhead": {"repeats": [{"metrics": got}]}}}
    status = {r.label: r.met for r in evaluate(summaries(run), suite.TARGETS)}
    assert status["ProxyWhirl hook CPU <= prometheus-client wrapper"] is False


def test_the_generated_section_replaces_only_what_is_between_the_markers() -> None:
    section = markdown_section(_run(), METRICS, RATIOS, TARGETS, "benchmarks.png")
    assert section.startswith(BEGIN)
    assert section.endswith(END)
    for expected in (
        "AMD EPYC, 2 logical CPUs, 24.0 GiB RAM, Linux 6.18",
        "0.10, 0.20, 0.30 before the run",
        "Kafka 4.4.0",
        "quixstreams (.venv-quix) 3.28.1",
        "Each benchmark ran 3 times.",
        "| worker_throughput | worker (events/s) | 250,000 | 200,000 - 300,000 | 2 |",
        "| worker / floor | 0.25 |",
        "| worker >= 500k | 250,000 | >= 500,000 | NOT met | 0.50x of the bound |",
        "| CPU <= 5 us | 3.20 | <= 5.00 | met | met |",
        "![throughput and latency of this run](benchmarks.png)",
    ):
        assert expected in section
    before, after = "# Benchmarks\n\nIntro, hand-written.\n\n", "\n\n## Analysis\n\nKept as is.\n"
    doc = before + BEGIN + "\nold numbers\n" + END + after
    updated = replace_section(doc, section)
    assert updated == before + section + after
    assert replace_section(updated, section) == updated  # a second run changes nothing else
    bare = "# Benchmarks\n\nIntro.\n\n## Core aggregation\n\nAnalysis.\n"
    inserted = replace_section(bare, section)
    assert (
        inserted
        == "# Benchmarks\n\nIntro.\n\n" + section + "\n\n## Core aggregation\n\nAnalysis.\n"
    )


def test_the_bench_dependencies_are_pinned_in_their_own_locks() -> None:
    """`make bench` installs requirements-bench.lock (the `bench` extra) and .venv-quix; the
    test environment (requirements.lock) carries neither."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]

    def pins(name: str) -> dict[str, str]:
        lines = (REPO / name).read_text().splitlines()
        return dict(line.split("==", 1) for line in lines if line and not line.startswith("#"))

    bench, base, quix = (
        pins("requirements-bench.lock"),
        pins("requirements.lock"),
        pins("requirements-quix.lock"),
    )
    for requirement in extras["bench"]:
        name, _, version = requirement.partition("==")
        assert bench[name] == version, requirement  # pinned exactly, and the same in the lock
    assert not set(bench) & set(base)
    assert "quixstreams" in quix
    assert "quixstreams" not in base
    assert quix["msgspec"] == base["msgspec"]  # the project's codec decodes envelopes there
    makefile = (REPO / "Makefile").read_text()
    bench_target = re.search(r"^bench:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert bench_target is not None
    assert "scripts/bootstrap-bench.sh" in bench_target.group(1)


@pytest.mark.parametrize("name", [b.name for b in suite.SUITE])
def test_every_suite_entry_names_metrics(name: str) -> None:
    bench = next(b for b in suite.SUITE if b.name == name)
    assert bench.metrics
    assert bench.script.startswith("benchmarks/")
