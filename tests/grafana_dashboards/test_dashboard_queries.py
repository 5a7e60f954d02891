"""Every panel, annotation and variable query of every ClickHouse dashboard, expanded as Grafana
and the ClickHouse plugin v4 expand them (grafana_expand.py), run on chDB against 13 months of
seeded history (seed.py) over 15 minutes, 24 hours, 90 days and 12 months, with All, one value
and several values selected: each runs, returns the columns its panel type needs, and rows."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from grafana_expand import ALL, Expansion, GrafanaVariable, Selection, expand
from seed import POOLS, REGIONS, Seeded

from stream_app.storage.client import StorageClient

DAY_S = 86_400
RANGES_S = {"15m": 900, "24h": DAY_S, "90d": 90 * DAY_S, "12mo": 365 * DAY_S}
MAX_DATA_POINTS = 1_000  # a panel about 1,000 pixels wide (unless it sets maxDataPoints)
CLICKHOUSE = "grafana-clickhouse-datasource"

SELECTIONS: dict[str, dict[str, Selection]] = {
    "all": {"pool": [ALL], "region": [ALL]},
    "one pool": {"pool": ["beta"], "region": [ALL]},
    "pools x one region": {"pool": ["alpha", "gamma"], "region": ["us-east"]},
}
EVERY_REGION: dict[str, Selection] = {"pool": [ALL], "region": list(REGIONS)}

TABLE_COLUMNS = {
    "Pool x region status": (
        "pool region total_requests success_rate error_rate p50_ms p95_ms p99_ms requests_per_s"
    ),
    "Pool x region totals": (
        "pool region total_requests success_rate error_rate p50_ms p95_ms p99_ms requests_per_s"
    ),
    "Top offenders": "proxy_id pool region total_requests error_rate p50_ms p95_ms p99_ms",
}
ANNOTATION_COLUMNS = ["time", "timeEnd", "title", "text", "tags"]
_NUMERIC = re.compile(r"^(Nullable\()?(U?Int\d+|Float\d+)\)?$")
_LABEL = re.compile(r"^(LowCardinality\()?String\)?$")


@dataclass(frozen=True)
class Query:
    where: str  # "<dashboard> / <panel or variable>"
    kind: str  # "timeseries" | "table" | "annotation" | "variable"
    sql: str
    max_points: int = MAX_DATA_POINTS


def clickhouse_dashboards(dashboards: Mapping[str, dict[str, Any]]) -> list[str]:
    return [
        name
        for name, d in dashboards.items()
        if any(p["datasource"]["type"] == CLICKHOUSE for p in d["panels"])
    ]


def queries_of(dashboard: dict[str, Any]) -> Iterator[Query]:
    title = dashboard["title"]
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            assert target["datasource"]["type"] == CLICKHOUSE, panel["title"]
            kind = "timeseries" if panel["type"] == "timeseries" else "table"
            points = panel.get("maxDataPoints", MAX_DATA_POINTS)
            yield Query(f"{title} / {panel['title']}", kind, target["rawSql"], points)
    for annotation in dashboard["annotations"]["list"]:
        if annotation.get("datasource", {}).get("type") == CLICKHOUSE:
            yield Query(
                f"{title} / {annotation['name']}", "annotation", annotation["target"]["rawSql"]
            )
    for variable in dashboard["templating"]["list"]:
        yield Query(f"{title} / ${variable['name']}", "variable", variable["query"])


def span(
    seeded: Seeded, range_s: int, *, ago_s: int = 0, max_points: int = MAX_DATA_POINTS
) -> Expansion:
    """The range ending ``ago_s`` before the seeded history's end, with Grafana's interval for
    ``max_points`` points (not rounded to Grafana's round intervals: any interval must do)."""
    to_ms = (seeded.now_s - ago_s) * 1000
    return Expansion(to_ms - range_s * 1000, to_ms, max(range_s * 1000 // max_points, 1))


class Runner:
    """Expands and runs one dashboard's queries on the seeded database."""

    def __init__(self, client: StorageClient, seeded: Seeded, dashboard: dict[str, Any]) -> None:
        self.client = client
        self.seeded = seeded
        self.variables = {
            v["name"]: GrafanaVariable.of(v, POOLS if v["name"] == "pool" else REGIONS)
            for v in dashboard["templating"]["list"]
        }

    def sql(self, query: str, window: Expansion, values: Mapping[str, Selection]) -> str:
        expanded = expand(query, window, self.variables, values)
        return re.sub(r"\bproxywhirl\.", f"{self.seeded.database}.", expanded)

    def run(
        self, query: str, window: Expansion, values: Mapping[str, Selection]
    ) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.client.rows(self.sql(query, window, values))]

    def columns(
        self, query: str, window: Expansion, values: Mapping[str, Selection]
    ) -> list[tuple[str, str]]:
        """(name, ClickHouse type) of each column the query returns."""
        sql = self.sql(query, window, values)
        return [(str(r[0]), str(r[1])) for r in self.client.rows(f"DESCRIBE ({sql})")]

    def proxy(
        self, dashboard: dict[str, Any], window: Expansion, values: dict[str, Selection]
    ) -> str:
        (variable,) = [v for v in dashboard["templating"]["list"] if v["name"] == "proxy"]
        rows = self.run(variable["query"], window, values)
        assert rows, "no proxy to select"
        return str(rows[0][0])


def check(
    query: Query, columns: list[tuple[str, str]], rows: list[tuple[Any, ...]], where: str
) -> None:
    assert rows, f"{where}: no rows"
    names = [name for name, _ in columns]
    if query.kind == "timeseries":
        assert names[0] == "time", where
        assert columns[0][1].startswith("DateTime"), where
        kinds = [t for _, t in columns[1:]]
        labels = [t for t in kinds if _LABEL.match(t)]
        assert len(labels) <= 1, f"{where}: {columns}"
        assert all(_NUMERIC.match(t) or _LABEL.match(t) for t in kinds), f"{where}: {columns}"
        assert len(kinds) > len(labels), f"{where}: no value column"
        times = [row[0] for row in rows]
        assert times == sorted(times), f"{where}: not sorted by time"
        for row in rows:
            values = dict(zip(names, row, strict=True))
            for rate in ("success_rate", "error_rate"):
                if values.get(rate) is not None:
                    assert 0 <= values[rate] <= 1, where
            if "p50_ms" in values:
                assert values["p50_ms"] <= values["p95_ms"] <= values["p99_ms"], where
    elif query.kind == "table":
        title = query.where.split(" / ")[1]
        assert names == TABLE_COLUMNS[title].split(), f"{where}: {names}"
    elif query.kind == "annotation":
        assert names == ANNOTATION_COLUMNS, where
        assert all(row[1] >= row[0] for row in rows), where
    else:
        assert len(columns) == 1, f"{where}: {columns}"
        assert _LABEL.match(columns[0][1]), f"{where}: {columns}"


@pytest.mark.parametrize("range_name", list(RANGES_S))
def test_every_query_runs_and_returns_what_its_panel_needs(
    dashboards: dict[str, dict[str, Any]],
    chdb_client: StorageClient,
    seeded: Seeded,
    range_name: str,
) -> None:
    window = span(seeded, RANGES_S[range_name])
    ran = 0
    columns: dict[str, list[tuple[str, str]]] = {}
    names = clickhouse_dashboards(dashboards)
    assert len(names) >= 3, names
    for name in names:
        dashboard = dashboards[name]
        runner = Runner(chdb_client, seeded, dashboard)
        for selection_name, selection in SELECTIONS.items():
            values: dict[str, Selection] = dict(selection)
            if "proxy" in runner.variables:
                values["proxy"] = runner.proxy(dashboard, window, values)
            for query in queries_of(dashboard):
                if query.kind == "timeseries":
                    assert query.sql.endswith("ORDER BY time"), query.where
                if query.kind == "annotation" and selection_name == "pools x one region":
                    continue  # no alert of alpha or gamma in us-east was seeded
                where = f"{query.where} [{range_name}, {selection_name}]"
                window = span(seeded, RANGES_S[range_name], max_points=query.max_points)
                if query.where not in columns:  # the types do not depend on the selection
                    columns[query.where] = runner.columns(query.sql, window, values)
                check(query, columns[query.where], runner.run(query.sql, window, values), where)
                ran += 1
    assert ran >= 60


@pytest.mark.parametrize("range_name", list(RANGES_S))
def test_all_regions_read_from_the_pool_rollups_equal_every_region_listed(
    dashboards: dict[str, dict[str, Any]],
    chdb_client: StorageClient,
    seeded: Seeded,
    range_name: str,
) -> None:
    """All (pool-level rollups) and every region named (pool x region tiers) agree."""
    dashboard = dashboards["proxywhirl-overview"]
    runner = Runner(chdb_client, seeded, dashboard)
    compared = 0
    for query in queries_of(dashboard):
        if query.kind != "timeseries":
            continue
        window = span(seeded, RANGES_S[range_name], max_points=query.max_points)
        # rows of one time come in any order (the queries order by time only)
        via_pools = sorted(runner.run(query.sql, window, SELECTIONS["all"]), key=str)
        via_scopes = sorted(runner.run(query.sql, window, EVERY_REGION), key=str)
        assert len(via_pools) == len(via_scopes), query.where
        for a, b in zip(via_pools, via_scopes, strict=True):
            for x, y in zip(a, b, strict=True):
                if isinstance(x, float):
                    assert math.isclose(x, y, rel_tol=1e-9), (query.where, a, b)
                else:
                    assert x == y, (query.where, a, b)
        compared += 1
    assert compared >= 5


@pytest.mark.parametrize(
    ("range_s", "ago_s", "tier_s"),
    [
        (900, 0, 10),  # 15 minutes: the 10 s windows
        (DAY_S, 0, 60),  # 24 hours: minutes
        (900, 20 * DAY_S, 60),  # 15 minutes 20 days ago: the 10 s windows are gone (14 d)
        (90 * DAY_S, 0, 3_600),  # 90 days: hours
        (2 * DAY_S, 100 * DAY_S, 3_600),  # minutes are kept 90 days
        (365 * DAY_S, 0, 86_400),  # 12 months: days
        (5 * 365 * DAY_S, 0, 86_400),  # 5 years: days (kept 5 years)
    ],
)
def test_the_tier_follows_the_range_and_the_retention(
    dashboards: dict[str, dict[str, Any]],
    chdb_client: StorageClient,
    seeded: Seeded,
    range_s: int,
    ago_s: int,
    tier_s: int,
) -> None:
    dashboard = dashboards["proxywhirl-overview"]
    runner = Runner(chdb_client, seeded, dashboard)
    sql = next(q.sql for q in queries_of(dashboard) if q.where.endswith("/ Throughput"))
    header = sql[: sql.index(" SELECT ")]
    window = span(seeded, range_s, ago_s=ago_s)
    ((chosen, step_s),) = chdb_client.rows(
        runner.sql(f"{header} SELECT tier_s, step_s", window, SELECTIONS["all"])
    )
    assert chosen == tier_s
    assert step_s % tier_s == 0
    assert step_s >= window.interval_s
    if ago_s == 0:  # the seeded history covers the range: data at this tier
        assert runner.run(sql, window, SELECTIONS["all"])


@pytest.mark.parametrize(
    ("range_s", "ago_s"),
    [(900, 20 * DAY_S), (900, 200 * DAY_S), (3 * 3_600, 60 * DAY_S), (3 * DAY_S, 300 * DAY_S)],
)
def test_the_status_table_of_a_short_range_long_ago_reads_the_rows_overlapping_it(
    dashboards: dict[str, dict[str, Any]],
    chdb_client: StorageClient,
    seeded: Seeded,
    range_s: int,
    ago_s: int,
) -> None:
    """Coarse rows (minutes, hours, days) overlapping the range, so it is never empty where
    there is history, and the mean rate is over the time those rows cover."""
    dashboard = dashboards["proxywhirl-overview"]
    runner = Runner(chdb_client, seeded, dashboard)
    (query,) = [q for q in queries_of(dashboard) if q.where.endswith("/ Pool x region status")]
    rows = runner.run(query.sql, span(seeded, range_s, ago_s=ago_s), SELECTIONS["all"])
    assert len(rows) == len(POOLS) * len(REGIONS)
    names = TABLE_COLUMNS["Pool x region status"].split()
    for row in rows:
        values = dict(zip(names, row, strict=True))
        assert values["total_requests"] > 0
        assert 0 < values["requests_per_s"] <= values["total_requests"]


def _tier_of(runner: Runner, sql: str, window: Expansion, values: Mapping[str, Selection]) -> int:
    header = sql[: sql.index(" SELECT ")]
    ((chosen,),) = runner.client.rows(runner.sql(f"{header} SELECT tier_s", window, values))
    return int(chosen)


@pytest.mark.parametrize(
    ("range_s", "ago_s", "offenders_tier_s", "history_tier_s"),
    [
        (DAY_S, 0, 60, 60),  # 24 hours: minutes
        (7 * DAY_S, 0, 86_400, 60),  # a week: Top offenders reads days, the history minutes
        (30 * DAY_S, 0, 86_400, 60),
        (90 * DAY_S, 0, 86_400, 86_400),  # starts (just) before proxy_1m keeps minutes: days
        (365 * DAY_S, 0, 86_400, 86_400),  # 12 months: days
        (DAY_S, 120 * DAY_S, 86_400, 86_400),  # a day 4 months ago: days
    ],
)
def test_the_proxy_panels_read_the_daily_rollup_for_long_ranges(
    dashboards: dict[str, dict[str, Any]],
    chdb_client: StorageClient,
    seeded: Seeded,
    range_s: int,
    ago_s: int,
    offenders_tier_s: int,
    history_tier_s: int,
) -> None:
    dashboard = dashboards["proxywhirl-proxies"]
    runner = Runner(chdb_client, seeded, dashboard)
    by_title = {q.where.split(" / ")[1]: q.sql for q in queries_of(dashboard)}
    offenders, history = by_title["Top offenders"], by_title["Proxy throughput"]
    window = span(seeded, range_s, ago_s=ago_s)
    values: dict[str, Selection] = dict(SELECTIONS["all"])
    values["proxy"] = runner.proxy(dashboard, span(seeded, DAY_S), values)
    assert _tier_of(runner, offenders, window, values) == offenders_tier_s
    assert _tier_of(runner, history, window, values) == history_tier_s

    rows = runner.run(offenders, window, values)
    assert rows
    if offenders_tier_s == 86_400 and ago_s == 0:
        # the daily rows of the range hold what the minutes of the same days hold
        db = seeded.database
        for proxy_id, pool, region, total, *_ in rows:
            ((minutes,),) = chdb_client.rows(
                f"SELECT sum(requests) FROM {db}.proxy_1m WHERE pool = {{pool:String}} "
                "AND region = {region:String} AND proxy_id = {proxy:String} "
                "AND window_start >= toStartOfDay(fromUnixTimestamp64Milli({from_ms:Int64}))",
                {"pool": pool, "region": region, "proxy": proxy_id, "from_ms": window.from_ms},
            )
            if range_s < 89 * DAY_S:  # within proxy_1m's seeded history
                assert total == minutes, proxy_id
            else:  # plus the days before it
                assert total > minutes, proxy_id
    points = runner.run(history, window, values)
    assert points
    if history_tier_s == 86_400:  # history before proxy_1m's (89 days) is shown
        assert min(p[0] for p in points).timestamp() < seeded.now_s - 89 * DAY_S
