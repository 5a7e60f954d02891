"""The read side's benchmarks in ``make bench``: REST API, Grafana panels, dashboard, exports.

Each generates its own synthetic history in chDB (``--days`` and friends) and times what a
user's page, panel or export does; none needs the run's broker.
"""

from __future__ import annotations

from benchmarks.suite_bench import Bench, metric

__all__ = ["SERVING"]

SERVING: tuple[Bench, ...] = (
    Bench(
        "api_queries",
        "benchmarks/api_queries.py",
        # 90 days of history (the series query's range): the 12-month fill alone takes ~3 min
        args=("--days", "90", "--duration-s", "40"),
        quick_args=("--days", "30", "--duration-s", "20"),
        timeout_s=420.0,
        metrics=(
            metric(
                "summary_p95_ms",
                "REST /summary p95",
                "ms",
                "endpoints.summary.p95_ms",
                higher=False,
            ),
            metric(
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
            metric(
                "fleet_worst_p95_ms",
                "Grafana, worst panel p95, fleet-wide (90 d, 12 mo)",
                "ms",
                "results.* fleet.worst_p95_ms",
                higher=False,
            ),
            metric(
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
            metric(
                "grid_ms",
                "dashboard navigation to grid",
                "ms",
                "navigation_to_grid_ms",
                higher=False,
            ),
            metric(
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
            metric(f"{f}_rows_per_s", f"export {f}", "rows/s", f"results.{f}.rows_per_s")
            for f in ("csv", "ndjson", "parquet")
        ),
        repeat=False,
    ),
)
