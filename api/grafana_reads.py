"""What a Grafana target is answered with: the query layer and settings (:class:`Reader`),
the range and point budget of a query (:class:`QuerySpan`), and the two reply shapes of the
simpod-json-datasource contract (time series and tables)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from api.grafana_scopes import Selection
from stream_app.storage.queries import StorageQueries
from stream_app.storage.query_tiers import DEFAULT_MAX_POINTS, Retention, TierChoice
from stream_app.storage.query_views import ScopeSeries, read_scope_series, series_choice

__all__ = ["Json", "QuerySpan", "Reader", "in_selection", "series", "table"]

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Reader:
    """The query layer and the settings REST v1 reads with."""

    queries: StorageQueries
    retention: Retention
    window_s: int
    settle_ms: int
    staleness_s: float
    _read: dict[tuple[TierChoice, str | None, str | None], ScopeSeries] = field(
        default_factory=dict, repr=False, compare=False
    )

    def scope_series(self, span: QuerySpan, pool: str | None, region: str | None) -> ScopeSeries:
        """A scope's series over ``span``, read once per :class:`Reader` (one ``/query``): the
        targets of a panel (p50, p95, p99; success and error rate) ask the same scope."""
        choice = series_choice(
            span.start_ms,
            span.end_ms,
            now_ms=span.now_ms,
            retention=self.retention,
            window_s=self.window_s,
            min_step_s=span.min_step_s,
            max_points=span.max_points,
        )
        key = (choice, pool, region)
        data = self._read.get(key)
        if data is None:
            data = read_scope_series(
                self.queries, choice, now_ms=span.now_ms, pool=pool, region=region
            )
            self._read[key] = data
        return data


@dataclass(frozen=True, slots=True)
class QuerySpan:
    """The range of a query, the clock, and Grafana's point budget."""

    start_ms: int
    end_ms: int
    now_ms: int
    max_points: int = DEFAULT_MAX_POINTS
    min_step_s: int = 0

    @classmethod
    def of(
        cls,
        start_ms: int,
        end_ms: int,
        now_ms: int,
        *,
        max_data_points: int | None,
        interval_ms: int | None,
    ) -> QuerySpan:
        """``maxDataPoints`` caps the points (never above REST's 1,500), ``intervalMs`` is
        the smallest step Grafana wants (REST's ``step_s``)."""
        max_points = DEFAULT_MAX_POINTS
        if max_data_points:
            max_points = min(max(max_data_points, 2), DEFAULT_MAX_POINTS)
        min_step_s = 0
        if interval_ms:
            min_step_s = min(math.ceil(interval_ms / 1000), 365 * 86_400)
        return cls(start_ms, end_ms, now_ms, max_points, min_step_s)


def table(columns: Iterable[tuple[str, str]], rows: list[list[Any]], ref_id: str | None) -> Json:
    out: Json = {
        "type": "table",
        "columns": [{"text": text, "type": kind} for text, kind in columns],
        "rows": rows,
    }
    if ref_id is not None:
        out["refId"] = ref_id
    return out


def series(name: str, points: Iterable[tuple[int, float | None]], ref_id: str | None) -> Json:
    out: Json = {"target": name, "datapoints": [[value, ts] for ts, value in points]}
    if ref_id is not None:
        out["refId"] = ref_id
    return out


def in_selection(selection: Selection, pool: str, region: str) -> bool:
    """Whether (``pool``, ``region``) is within ``selection`` (for rows read unfiltered)."""
    for dimension, value in (("pool", pool), ("region", region)):
        include = selection.include[dimension]
        if (include is not None and value not in include) or value in selection.exclude[dimension]:
            return False
    return True
