"""The producer side's benchmarks in ``make bench``: ``emit()``'s cost and the ProxyWhirl hook's.

Both repeat inside (``repeat=False``) and compare with prometheus-client in the same run:
emit_cost.py against a labelled ``Counter.inc`` + ``Histogram.observe`` on 1, 4 and 8 threads,
proxywhirl_overhead.py against a minimal prometheus-client wrapper.
"""

from __future__ import annotations

from benchmarks.report import Metric
from benchmarks.suite_bench import Bench, metric

__all__ = ["PRODUCER"]


def _emit_metrics() -> tuple[Metric, ...]:
    out: list[Metric] = []
    for n in (1, 4, 8):
        for who in ("emit", "prometheus"):
            for q, label in (("p99_us", "p99"), ("p99_9_us", "p99.9")):
                out.append(
                    metric(
                        f"{who}_{n}t_{q}",
                        f"{'emit()' if who == 'emit' else 'prometheus-client'} {n} thr {label}",
                        "us",
                        f"{who}_{n}t.median.{q}",
                        f"{who}_{n}_thread{'s' if n > 1 else ''}.{q}",
                        higher=False,
                    )
                )
    return tuple(out)


PRODUCER: tuple[Bench, ...] = (
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
            metric(
                "hook_cpu_us",
                "ProxyWhirl hook, added CPU/request",
                "us",
                "headline.end_to_end_added_cpu_us.integration_sync",
                "end_to_end.integration_sync.added_cpu_p50_us",
                higher=False,
            ),
            metric(
                "prometheus_cpu_us",
                "prometheus-client wrapper, added CPU/request",
                "us",
                "headline.end_to_end_added_cpu_us.prometheus_wrapper",
                "end_to_end.reference_prometheus.added_cpu_p50_us",
                higher=False,
            ),
            metric(
                "hook_isolated_us",
                "hook alone (isolated)",
                "us",
                "headline.isolated_added_cpu_us.integration",
                higher=False,
            ),
            metric(
                "prometheus_isolated_us",
                "prometheus wrapper alone (isolated)",
                "us",
                "headline.isolated_added_cpu_us.prometheus_wrapper",
                higher=False,
            ),
        ),
        repeat=False,
    ),
)
