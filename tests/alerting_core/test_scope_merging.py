"""Pool, region and fleet scopes merged from pool x region windows equal the raw events' values."""

from __future__ import annotations

import pytest
from alerting_core_kit import agg
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.aggregates import Scope
from schemas.events import Outcome
from schemas.rules import Metric, Selector
from schemas.wire import WireEvent
from stream_app.core.accumulator import Accumulator
from stream_app.core.rules import ScopeRef, merge_aggregates
from stream_app.core.rules.metrics import metric_value
from stream_app.core.rules.scopes import Totals, rollup

_WINDOW_START_MS = 1_800_000_000_000

events = st.lists(
    st.tuples(
        st.sampled_from(["p1", "p2"]),
        st.sampled_from(["eu", "us", "ap"]),
        st.sampled_from([Outcome.SUCCESS, Outcome.TIMEOUT, Outcome.HTTP_ERROR]),
        st.floats(min_value=0.5, max_value=20_000.0),
        st.sampled_from([200, 502, None]),
    ),
    min_size=1,
    max_size=150,
)


def _wire(
    n: int, pool: str, region: str, outcome: Outcome, latency: float, status: int | None
) -> WireEvent:
    return WireEvent(
        event_id=f"e{n}",
        ts_ms=_WINDOW_START_MS + n,
        pool=pool,
        region=region,
        outcome=outcome,
        latency_ms=latency,
        source_host="h1",
        status_code=status,
    )


@settings(max_examples=60, deadline=None)
@given(events)
def test_merged_scopes_equal_accumulating_the_events_directly(
    raw: list[tuple[str, str, Outcome, float, int | None]],
) -> None:
    per_cell: dict[tuple[str, str], Accumulator] = {}
    per_pool: dict[str, Accumulator] = {}
    fleet = Accumulator()
    for n, (pool, region, outcome, latency, status) in enumerate(raw):
        ev = _wire(n, pool, region, outcome, latency, status)
        per_cell.setdefault((pool, region), Accumulator()).add(ev)
        per_pool.setdefault(pool, Accumulator()).add(ev)
        fleet.add(ev)
    cells = [
        acc.to_aggregate(Scope(pool=p, region=r), _WINDOW_START_MS, 10)
        for (p, r), acc in sorted(per_cell.items())
    ]
    for pool, acc in per_pool.items():
        direct = acc.to_aggregate(Scope(pool=pool, region="all"), _WINDOW_START_MS, 10)
        merged = merge_aggregates(
            [c for c in cells if c.scope.pool == pool], Scope(pool=pool, region="all")
        )
        assert merged.model_dump(exclude={"latency"}) == direct.model_dump(exclude={"latency"})
        assert merged.latency.buckets == direct.latency.buckets
        assert merged.latency.sum_ms == pytest.approx(direct.latency.sum_ms)
        assert (merged.latency.min_ms, merged.latency.max_ms) == (
            direct.latency.min_ms,
            direct.latency.max_ms,
        )

    fleet_agg = fleet.to_aggregate(Scope(pool="all", region="all"), _WINDOW_START_MS, 10)
    (fleet_totals,) = rollup(cells, "fleet", Selector(), 10).values()
    fleet_direct = Totals(fleet_agg, 10)
    for metric in Metric:
        which = "timeout" if metric is Metric.OUTCOME_RATE else None
        assert metric_value(fleet_totals, metric, which) == pytest.approx(
            metric_value(fleet_direct, metric, which)
        )


def test_rollup_groups_by_level_and_respects_the_selector() -> None:
    cells = [agg("a", "eu", 0), agg("a", "us", 0, errors=10), agg("b", "eu", 0, errors=50)]
    by_region = rollup(cells, "region", Selector(pool=["a"]), 10)
    assert {s: t.requests for s, t in by_region.items()} == {
        ScopeRef("region", region="eu"): 100,
        ScopeRef("region", region="us"): 100,
    }
    by_pool = rollup(cells, "pool", Selector(), 10)
    assert metric_value(by_pool[ScopeRef("pool", pool="a")], Metric.ERROR_RATE) == 0.05
    # the borrowed maps of the first aggregate are not modified by merging
    assert cells[0].outcomes == {Outcome.SUCCESS: 100}


def test_merge_refuses_mixed_windows_and_nothing() -> None:
    with pytest.raises(ValueError, match="cannot merge"):
        merge_aggregates([agg("a", "eu", 0), agg("a", "eu", 1)], Scope(pool="a", region="eu"))
    with pytest.raises(ValueError, match="nothing"):
        merge_aggregates([], Scope(pool="a", region="eu"))


def test_no_requests_is_no_value_not_zero() -> None:
    empty = Totals(agg("a", "eu", 0, requests=0), 10)
    assert all(metric_value(empty, m) is None for m in Metric)


@pytest.mark.parametrize(
    "key", ["pool_region|a|eu|", "pool|a||", "region||eu|", "fleet|||", "proxy|a|eu|" + "ab" * 8]
)
def test_scope_keys_round_trip(key: str) -> None:
    assert ScopeRef.from_key(key).key() == key


@pytest.mark.parametrize("key", ["pool||eu|", "nope|||", "pool|a", "fleet|a||"])
def test_malformed_scope_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match="scope key"):
        ScopeRef.from_key(key)
