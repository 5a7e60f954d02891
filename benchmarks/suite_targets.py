"""What ``make bench`` compares and judges: the ratios against the peers and the targets.

Both name metrics ``benchmark.metric`` (the suite's :class:`benchmarks.suite_bench.Bench` names
and their metric keys); ratios divide medians of one run. The targets are those of issue 12 and
docs/benchmarks.md.
"""

from __future__ import annotations

from benchmarks.report import Ratio, Target

__all__ = ["F1", "F2", "RATIOS", "TARGETS", "W1", "W2"]

# the worker's and the floor's drain rates, v1 and v2 envelopes (also plotted: suite.py)
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
