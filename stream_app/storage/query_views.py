"""Read views: what every reader shows (REST v1 returns them as they are; the Grafana
datasource, exports and the dashboard read the same), built from :class:`StorageQueries`.

- :func:`summary_view`: the latest closed window per pool x region with its freshness (age of the
  newest stored data, a stale flag) and a status (``ok``, ``alerting``, ``stale``, ``no_data``).
- :func:`series_view`: one metric of one scope over a range, at the tier and step of
  :func:`~.query_tiers.choose_tier`; a step without data is ``null``, never 0.
- :func:`offenders_view`: the worst proxies of a scope by error rate or p95 latency, each with
  its series.

Synchronous (storage calls block): call from a thread in asyncio code.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.events import Outcome
from schemas.rules import BaselineRule, RuleSet
from stream_app.alerting.window_reader import totals_to_aggregate
from stream_app.core.rules.baselines import baseline_from_dict
from stream_app.core.rules.metrics import metric_value as rule_metric_value
from stream_app.core.rules.scopes import ScopeRef, Totals
from stream_app.storage.queries import StorageQueries
from stream_app.storage.query_alerts import AlertFilter
from stream_app.storage.query_baselines import SavedBaselines
from stream_app.storage.query_metrics import SeriesMetric, metric_value
from stream_app.storage.query_series import OffenderOrder
from stream_app.storage.query_tiers import Retention, TierChoice, choose_tier
from stream_app.storage.results import WindowTotals
from stream_app.storage.tables import PROXY_TABLE, RESOLUTION_TABLES, Resolution
from stream_app.storage.view_models import (
    BaselineDeviation,
    Freshness,
    Metrics,
    OffendersView,
    OffenderView,
    Point,
    ScopeSummary,
    SeriesView,
    SummaryView,
)

__all__ = [
    "BaselineDeviation",
    "Freshness",
    "OffenderView",
    "OffendersView",
    "ScopeSeries",
    "ScopeSummary",
    "SeriesView",
    "SummaryView",
    "offenders_view",
    "read_scope_series",
    "render_series",
    "series_choice",
    "series_view",
    "summary_view",
]

_RECENT_MS = 3_600_000
_DAY_MS = 86_400_000


def newest_data(
    queries: StorageQueries,
    now_ms: int,
    *,
    pool: str | None = None,
    region: str | None = None,
) -> dict[tuple[str, str], int]:
    """(pool, region) -> end of its newest data within a day: to the window from the last hour
    of ``agg_10s``, to the minute (``agg_1m``) for scopes silent longer (a cheap scan)."""
    newest = queries.newest_data(since_ms=now_ms - _RECENT_MS, pool=pool, region=region)
    older = queries.newest_data(
        since_ms=now_ms - _DAY_MS, pool=pool, region=region, resolution=Resolution.MINUTE
    )
    for key, end_ms in older.items():
        newest.setdefault(key, end_ms)
    return newest


def _freshness(newest_end_ms: int | None, now_ms: int, staleness_s: float) -> Freshness:
    if newest_end_ms is None:
        return Freshness(newest_data_end_ms=None, age_s=None, stale=True)
    age_s = max(0.0, (now_ms - newest_end_ms) / 1000)
    return Freshness(newest_data_end_ms=newest_end_ms, age_s=age_s, stale=age_s > staleness_s)


def _deviations(
    rules: RuleSet, saved: SavedBaselines, totals: WindowTotals
) -> list[BaselineDeviation]:
    pool, region = totals.pool, totals.region
    out: list[BaselineDeviation] = []
    engine_totals = Totals(totals_to_aggregate(totals), totals.window_s)
    for rule in rules.rules:
        if not isinstance(rule, BaselineRule) or not rule.enabled:
            continue
        if rule.level != "pool_region" or not rule.selector.matches(pool, region):
            continue
        value = rule_metric_value(engine_totals, rule.metric, rule.outcome)
        data = saved.get((rule.id, ScopeRef("pool_region", pool, region).key()))
        verdict = None
        state = "no_data" if value is None else "not_learnt" if data is None else "warming_up"
        if value is not None and data is not None:
            try:
                verdict = baseline_from_dict(data).judge(
                    value, totals.window_start_ms, rule.baseline
                )
            except ValueError:
                state = "not_learnt"
        out.append(
            BaselineDeviation(
                rule_id=rule.id,
                metric=rule.metric.value,
                value=value,
                baseline=None if verdict is None else verdict.mean,
                sigma=None if verdict is None else verdict.sigma,
                breach=verdict is not None and verdict.breach,
                state=state if verdict is None else "judged",
            )
        )
    return out


def summary_view(
    queries: StorageQueries,
    *,
    now_ms: int,
    window_s: int,
    settle_ms: int,
    staleness_s: float,
    pool: str | None = None,
    region: str | None = None,
    rules: RuleSet | None = None,
) -> SummaryView:
    """The latest closed window of every (pool, region) known in the last day; with ``rules``,
    each scope's deviation from the baselines its baseline rules learnt."""
    window_ms = window_s * 1000
    settled_end_ms = (now_ms - settle_ms) // window_ms * window_ms
    since_ms = now_ms - int(max(staleness_s, window_s) * 1000) - settle_ms
    known = set(queries.pools_regions(now_ms - 86_400_000))
    latest = {(t.pool, t.region): t for t in queries.latest_windows(
        since_ms=since_ms, settled_end_ms=settled_end_ms
    )}  # fmt: skip
    newest = newest_data(queries, now_ms)
    covered = rules is not None and any(isinstance(r, BaselineRule) for r in rules.rules)
    saved = queries.saved_baselines() if covered else {}
    alerts: dict[tuple[str, str], int] = {}
    for alert in queries.active_alerts(AlertFilter(pool=pool, region=region)):
        key = (alert.pool, alert.region)
        alerts[key] = alerts.get(key, 0) + 1
    scopes: list[ScopeSummary] = []
    for key in sorted(known | latest.keys() | newest.keys()):
        if (pool is not None and key[0] != pool) or (region is not None and key[1] != region):
            continue
        totals = latest.get(key)
        freshness = _freshness(newest.get(key), now_ms, staleness_s)
        firing = alerts.get(key, 0)
        if totals is None:
            status = "no_data"
        elif freshness.stale:
            status = "stale"
        elif firing:
            status = "alerting"
        else:
            status = "ok"
        scopes.append(
            ScopeSummary(
                pool=key[0],
                region=key[1],
                status=status,
                window_start_ms=None if totals is None else totals.window_start_ms,
                window_end_ms=None
                if totals is None
                else totals.window_start_ms + totals.window_s * 1000,
                freshness=freshness,
                active_alerts=firing,
                metrics=None if totals is None else Metrics.of(totals, totals.window_s),
                baselines=[]
                if totals is None or rules is None
                else _deviations(rules, saved, totals),
            )
        )
    return SummaryView(
        generated_at_ms=now_ms,
        settled_end_ms=settled_end_ms,
        staleness_s=staleness_s,
        scopes=scopes,
    )


def _points(
    choice: TierChoice,
    by_step: dict[int, WindowTotals],
    metric: SeriesMetric,
    outcome: Outcome | None,
) -> list[Point]:
    return [
        (
            step_ms,
            metric_value(by_step.get(step_ms), metric, span_s=choice.step_s, outcome=outcome),
        )
        for step_ms in choice.steps_ms()
    ]


@dataclass(frozen=True, slots=True)
class ScopeSeries:
    """What every metric of one scope's series is computed from: one read of storage.

    :func:`series_view` is :func:`read_scope_series` then :func:`render_series`; a reader showing
    several metrics of a scope (the dashboard asks for six or more at once) reads once and
    renders each metric from the same :class:`ScopeSeries` (``api.routes.query`` shares it).
    """

    choice: TierChoice
    by_step: dict[int, WindowTotals]
    newest_end_ms: int | None


def series_choice(
    start_ms: int,
    end_ms: int,
    *,
    now_ms: int,
    retention: Retention,
    window_s: int = 10,
    min_step_s: int = 0,
    max_points: int = 1_500,
) -> TierChoice:
    """Tier and step of a series over ``[start_ms, end_ms)`` (:func:`.query_tiers.choose_tier`)."""
    return choose_tier(
        start_ms,
        end_ms,
        now_ms=now_ms,
        retention=retention,
        max_points=max_points,
        min_step_s=min_step_s,
        window_s=window_s,
    )


def read_scope_series(
    queries: StorageQueries,
    choice: TierChoice,
    *,
    now_ms: int,
    pool: str | None = None,
    region: str | None = None,
) -> ScopeSeries:
    """The stored totals per step of (pool, region) and the end of its newest data."""
    by_step = queries.series(choice, pool=pool, region=region)
    newest = newest_data(queries, now_ms, pool=pool, region=region)
    return ScopeSeries(choice, by_step, max(newest.values(), default=None))


def render_series(
    data: ScopeSeries,
    metric: SeriesMetric,
    *,
    now_ms: int,
    staleness_s: float,
    pool: str | None = None,
    region: str | None = None,
    outcome: Outcome | None = None,
) -> SeriesView:
    """``metric`` (with ``outcome`` for ``outcome_rate``) of the scope read into ``data``."""
    if (metric is SeriesMetric.OUTCOME_RATE) != (outcome is not None):
        raise ValueError("outcome is needed with outcome_rate, and only there")
    choice = data.choice
    return SeriesView(
        metric=metric,
        outcome=outcome,
        pool=pool,
        region=region,
        tier=choice.resolution.value,
        table=RESOLUTION_TABLES[choice.resolution],
        step_s=choice.step_s,
        start_ms=choice.start_ms,
        end_ms=choice.end_ms,
        points=_points(choice, data.by_step, metric, outcome),
        freshness=_freshness(data.newest_end_ms, now_ms, staleness_s),
    )


def series_view(
    queries: StorageQueries,
    metric: SeriesMetric,
    *,
    start_ms: int,
    end_ms: int,
    now_ms: int,
    retention: Retention,
    staleness_s: float,
    window_s: int = 10,
    pool: str | None = None,
    region: str | None = None,
    outcome: Outcome | None = None,
    min_step_s: int = 0,
    max_points: int = 1_500,
) -> SeriesView:
    """``metric`` of (pool, region) (all when None) over ``[start_ms, end_ms)``."""
    if (metric is SeriesMetric.OUTCOME_RATE) != (outcome is not None):
        raise ValueError("outcome is needed with outcome_rate, and only there")
    choice = series_choice(
        start_ms,
        end_ms,
        now_ms=now_ms,
        retention=retention,
        window_s=window_s,
        min_step_s=min_step_s,
        max_points=max_points,
    )
    data = read_scope_series(queries, choice, now_ms=now_ms, pool=pool, region=region)
    return render_series(
        data,
        metric,
        now_ms=now_ms,
        staleness_s=staleness_s,
        pool=pool,
        region=region,
        outcome=outcome,
    )


def offenders_view(
    queries: StorageQueries,
    *,
    pool: str,
    region: str | None,
    order_by: OffenderOrder,
    start_ms: int,
    end_ms: int,
    now_ms: int,
    retention: Retention,
    limit: int = 10,
    min_requests: int = 10,
    max_points: int = 1_500,
) -> OffendersView:
    """The ``limit`` worst proxies and their series (all series together stay under
    ``max_points``; the step is at least the 1 min of ``proxy_1m``)."""
    worst = queries.top_proxies(
        start_ms,
        end_ms,
        pool=pool,
        region=region,
        order_by=order_by,
        min_requests=min_requests,
        limit=limit,
    )
    per_proxy = max(2, max_points // max(1, len(worst)))
    choice = choose_tier(
        start_ms, end_ms, now_ms=now_ms, retention=retention, max_points=per_proxy, min_step_s=60
    )
    ids = [t.proxy_id for t in worst if t.proxy_id is not None]
    series = queries.proxy_series(choice, ids, pool=pool, region=region)
    metric = SeriesMetric.ERROR_RATE if order_by == "error_rate" else SeriesMetric.LATENCY_P95_MS
    span_s = max(1.0, (end_ms - start_ms) / 1000)
    proxies: list[OffenderView] = []
    for totals in worst:
        proxy_id = totals.proxy_id or ""
        proxies.append(
            OffenderView(
                proxy_id=proxy_id,
                pool=totals.pool,
                region=totals.region,
                metrics=Metrics.of(totals, span_s),
                series=_points(choice, series.get(proxy_id, {}), metric, None),
            )
        )
    return OffendersView(
        pool=pool,
        region=region,
        order_by=order_by,
        start_ms=start_ms,
        end_ms=end_ms,
        table=PROXY_TABLE,
        step_s=choice.step_s,
        proxies=proxies,
    )
