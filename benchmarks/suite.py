"""What ``make bench`` runs (benchmarks/run_all.py): scripts, arguments, metrics, ratios, targets.

Each :class:`Bench` is a script run as its own process (``args``, or ``quick_args`` with
``--quick``), with the metrics read from the JSON it writes (:class:`benchmarks.report.Metric`:
dotted paths, the first found counts). Ratios and targets name metrics ``benchmark.metric``;
the targets are those of issue 12 and docs/benchmarks.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.bench_env import RESULTS_DIR
from benchmarks.report import Metric, Ratio, Target


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
            _m("events_per_s", "aiokafka + decode, floor, v1 envelopes", EPS, "drain.events_per_s"),
            _m("cpu_us", "CPU per event, v1", "us", "drain.cpu_us_per_event", higher=False),
            _m("v2_events_per_s", "floor, v2 columnar envelopes", EPS, "drain_v2.events_per_s"),
            _m("v2_cpu_us", "CPU per event, v2", "us", "drain_v2.cpu_us_per_event", higher=False),
        ),
        uses="backlog",
    ),
    Bench(
        "worker_throughput",
        "benchmarks/worker_throughput.py",
        # the garbage collector tuned as `proxywhirl-metrics worker` does (WorkerSettings default)
        # a backlog long enough that start-up and the last cycle do not set the rate
        args=(
            "--skip-live",
            "--events",
            "2000000",
            "--fleet-events",
            "1000000",
            "--gc-threshold0",
            "50000",
        ),
        quick_args=(
            "--skip-live",
            "--events",
            "500000",
            "--fleet-events",
            "300000",
            "--gc-threshold0",
            "50000",
        ),
        metrics=(
            _m("events_per_s", "1 worker drains the demo fleet, v1", EPS, "drain.events_per_s"),
            _m("cpu_us", "CPU per event, v1", "us", "drain.cpu_us_per_event", higher=False),
            _m("v2_events_per_s", "1 worker, v2 columnar envelopes", EPS, "drain_v2.events_per_s"),
            _m("v2_cpu_us", "CPU per event, v2", "us", "drain_v2.cpu_us_per_event", higher=False),
            _m(
                "fleet_events_per_s",
                "1 worker, fleet scale 50x20x10k, v2",
                EPS,
                "drain_fleet.events_per_s",
                "fleet.drain.events_per_s",
                "fleet.events_per_s",
            ),
            _m(
                "fleet_cpu_us",
                "CPU per event, fleet scale",
                "us",
                "drain_fleet.cpu_us_per_event",
                higher=False,
            ),
        ),
        uses="bootstrap",
    ),
    Bench(
        "worker_live",
        "benchmarks/worker_throughput.py",
        args=("--skip-drain", "--live-seconds", "20", "--gc-threshold0", "50000"),
        quick_args=("--skip-drain", "--live-seconds", "20", "--gc-threshold0", "50000"),
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
            _m(
                "w2_busiest_share",
                "busiest of 2 workers' share of events",
                "fraction",
                "busiest_share",
            ),
        ),
        uses="backlog",
    ),
    Bench(
        "peer_quix",
        "benchmarks/peer_quix.py",
        args=("--max-events", "100000"),
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
        args=("--max-events", "15000"),
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
            _m(
                "v2_events_per_cpu_s",
                "core, demo mix, v2 columnar",
                "events/CPU-s",
                "small.results.decode+aggregate v2.events_per_s_cpu",
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
            _m(
                "v2_events_per_cpu_s",
                "core, fleet 50x20x10k, v2 columnar",
                "events/CPU-s",
                "fleet.results.decode+aggregate v2.events_per_s_cpu",
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
        args=("--pairs", "1000"),
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
        # 90 days of history (the series query's range): the 12-month fill alone takes ~3 min
        args=("--days", "90", "--duration-s", "40"),
        quick_args=("--days", "30", "--duration-s", "20"),
        timeout_s=420.0,
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
        args=("--repeats", "3"),
        quick_args=("--days", "120", "--hourly-days", "30", "--proxies", "2000", "--repeats", "3"),
        metrics=(
            _m(
                "fleet_worst_p95_ms",
                "Grafana, worst panel p95, fleet-wide (90 d, 12 mo)",
                "ms",
                "results.* fleet.worst_p95_ms",
                higher=False,
            ),
            _m(
                "pool_worst_p95_ms",
                "Grafana, worst panel p95, one pool (90 d, 12 mo)",
                "ms",
                "results.* one pool.worst_p95_ms",
                higher=False,
            ),
        ),
        repeat=False,
        timeout_s=300.0,
    ),
    Bench(
        "dashboard_page",
        "benchmarks/dashboard_page.py",
        args=("--days", "30", "--duration-s", "30"),
        quick_args=("--days", "7", "--duration-s", "15"),
        timeout_s=300.0,
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
        args=("--days", "30"),
        quick_args=("--days", "7", "--pools", "10", "--regions", "5"),
        timeout_s=300.0,
        metrics=tuple(
            _m(f"{f}_rows_per_s", f"export {f}", "rows/s", f"results.{f}.rows_per_s")
            for f in ("csv", "ndjson", "parquet")
        ),
        repeat=False,
    ),
)

W1, W2 = "worker_throughput.events_per_s", "worker_throughput.v2_events_per_s"
F1, F2 = "peer_floor.events_per_s", "peer_floor.v2_events_per_s"
RATIOS = (
    Ratio("worker / floor, v2 columnar envelopes", W2, F2),
    Ratio("worker v2 / worker v1 envelopes", W2, W1),
    Ratio("worker / floor (aiokafka + decode), v1 envelopes", W1, F1),
    Ratio("worker v2 / Quix Streams, envelopes", W2, "peer_quix.envelopes_eps"),
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
    Target("worker >= 500k events/s, demo fleet, v1 envelopes", W1, ">=", 500_000),
    Target("worker >= 500k events/s, demo fleet, v2 columnar", W2, ">=", 500_000),
    Target(
        "worker >= 250k events/s, fleet scale",
        "worker_throughput.fleet_events_per_s",
        ">=",
        250_000,
    ),
    Target("worker within 2x of the floor, v1", W1, ">=", relative_to=F1, factor=0.5),
    Target("worker within 2x of the floor, v2", W2, ">=", relative_to=F2, factor=0.5),
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
    Target(
        "Grafana panels fleet-wide p95 <= 250 ms (worst panel)",
        "grafana_panels.fleet_worst_p95_ms",
        "<=",
        250.0,
    ),
    Target(
        "Grafana panels one pool p95 <= 100 ms (worst panel)",
        "grafana_panels.pool_worst_p95_ms",
        "<=",
        100.0,
    ),
)

THROUGHPUT_PLOT = (
    ("floor: aiokafka + decode, v1", F1),
    ("floor: aiokafka + decode, v2", F2),
    ("worker, 1 (drain), v1", W1),
    ("worker, 1 (drain), v2 columnar", W2),
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
    "500-event envelopes of schema v1 and v2 (columnar, numeric columns packed as the producer "
    "sends them) and as one JSON event per message, 4 partitions, zstd). The floor (v1 and v2), "
    "Quix Streams, Faust and the scaling runs read that backlog; worker_throughput.py writes the "
    "same events (same simulator and seed; a 2M-event backlog in the full run) to its own topics "
    "on the same broker, as v1 and v2 envelopes, then a 1M-event backlog of the fleet-scale "
    "profile (50 pools x 20 regions x 10k proxies, core_throughput.py) as v2 envelopes; each "
    "drain is timed from the worker holding its partitions to every offset committed after the "
    "last insert. Each benchmark "
    "ran as its own process, {repeats} time(s) where the runner repeats it (the others repeat "
    "inside: emit_cost, core_throughput, proxywhirl_overhead), one after another; the load "
    "average was read before and after each. Medians and min - max spreads are over the "
    "repeats; ratios divide medians of this run. Wall-clock rates are absolute numbers of this "
    "machine; CPU per event is the process's CPU time."
)
