"""A degraded pipeline holds absence and rate rules and raises one alert instead."""

from __future__ import annotations

import json

import pytest
from alerting_core_kit import LAG_MS, Scenario, agg, end_of

from schemas.alerts import AlertStatus
from stream_app.core.rules import PIPELINE_RULE_ID, PipelineStatus

POOLS = [f"pool{n:02d}" for n in range(30)]


def rules_text(**pipeline: object) -> str:
    health: dict[str, object] = {"max_lag_ms": 30_000, "max_staleness_ms": 60_000, "for_s": 20}
    health.update(pipeline)
    return json.dumps(
        {
            "grouping": {"group_wait_s": 0, "resend_interval_s": 60},
            "pipeline_health": health,
            "rules": [
                {
                    "id": "silent",
                    "name": "ProxyPoolSilent",
                    "kind": "absence",
                    "level": "pool",
                    "absence": {"windows": 3},
                },
                {
                    "id": "errors",
                    "name": "ProxyPoolHighErrorRate",
                    "kind": "threshold",
                    "metric": "error_rate",
                    "op": ">",
                    "threshold": 0.05,
                    "for_windows": 3,
                },
                {
                    "id": "slow",
                    "name": "ProxyPoolSlow",
                    "kind": "threshold",
                    "metric": "latency_p95_ms",
                    "op": ">",
                    "threshold": 1000,
                    "for_s": 0,
                },
            ],
        }
    )


def healthy(sc: Scenario, i: int, now_ms: int | None = None) -> None:
    now = end_of(i) + LAG_MS if now_ms is None else now_ms
    sc.keep(i, sc.engine.set_pipeline_status(PipelineStatus(0, True, end_of(i)), now_ms=now))


def lagging(sc: Scenario, i: int, watermark_ms: int, lag_ms: int = 120_000) -> None:
    status = PipelineStatus(lag_ms=lag_ms, sink_ok=True, watermark_ms=watermark_ms)
    sc.keep(i, sc.engine.set_pipeline_status(status, now_ms=end_of(i) + LAG_MS))


def pool_events(sc: Scenario) -> list[tuple[int, str, str, AlertStatus]]:
    return [
        (i, e.labels["rule_id"], e.labels.get("pool", ""), e.status)
        for i, e in sc.events
        if e.labels["rule_id"] != PIPELINE_RULE_ID
    ]


def pipeline_events(sc: Scenario) -> list[tuple[int, AlertStatus]]:
    return [(i, e.status) for i, e in sc.events if e.labels["rule_id"] == PIPELINE_RULE_ID]


@pytest.mark.parametrize("backlog", ["windows wait for the watermark", "idle timer closes empty"])
def test_lagging_pipeline_pages_once_not_once_per_pool(backlog: str) -> None:
    sc = Scenario.of(rules_text())
    for i in range(5):
        healthy(sc, i)
        sc.window(i, [agg(p, "eu", i) for p in POOLS])
    # the consumer falls behind: nothing new is aggregated for windows 5..14
    for i in range(5, 15):
        lagging(sc, i, watermark_ms=end_of(4))
        if backlog == "idle timer closes empty":
            sc.window(i, [])
    assert pool_events(sc) == []
    assert pipeline_events(sc) == [(7, AlertStatus.FIRING)]  # degraded at 5, for_s 20 s
    (page,) = [e for _, e in sc.events]
    assert page.labels == {
        "alertname": "PipelineDegraded",
        "severity": "page",
        "rule_id": PIPELINE_RULE_ID,
    }
    assert "consumer lag 120000 ms" in page.annotations["summary"]
    assert page.value == 120_000
    assert len(sc.notifications) == 1

    # catching up: the backlog (real traffic) is processed fast, then the lag is gone
    start = 15 if backlog == "idle timer closes empty" else 5
    for i in range(start, 20):
        sc.window(i, [agg(p, "eu", i) for p in POOLS], now_ms=end_of(14) + LAG_MS + i)
    healthy(sc, 20, now_ms=end_of(20) + LAG_MS)
    for i in range(21, 30):
        healthy(sc, i)
        sc.window(i, [agg(p, "eu", i) for p in POOLS])
    assert pool_events(sc) == []
    assert pipeline_events(sc) == [(7, AlertStatus.FIRING), (20, AlertStatus.RESOLVED)]


def test_an_alert_firing_before_the_lag_stays_one_alert() -> None:
    sc = Scenario.of(rules_text())
    for i in range(5):
        healthy(sc, i)
        sc.window(i, [agg("bad", "eu", i, errors=30), agg("good", "eu", i)])
    assert pool_events(sc) == [(2, "errors", "bad", AlertStatus.FIRING)]
    for i in range(5, 12):
        lagging(sc, i, watermark_ms=end_of(4))
        sc.window(i, [])  # empty windows while behind: no data, but no resolution either
    assert pool_events(sc) == [(2, "errors", "bad", AlertStatus.FIRING)]
    assert len(sc.resends) >= 1  # still re-sent while held, so Alertmanager keeps it
    for i in range(12, 20):
        healthy(sc, i)
        sc.window(i, [agg("bad", "eu", i, errors=30), agg("good", "eu", i)])
    assert pool_events(sc) == [(2, "errors", "bad", AlertStatus.FIRING)]
    bad_notes = [
        n for _, n in sc.notifications if any(a.labels.get("pool") == "bad" for a in n.alerts)
    ]
    assert len(bad_notes) == 1


def test_pending_time_is_not_double_counted_by_the_backlog() -> None:
    sc = Scenario.of(rules_text())
    for i in range(4):
        healthy(sc, i)
        sc.window(i, [agg("x", "eu", i)])
    healthy(sc, 4)
    sc.window(4, [agg("x", "eu", 4, errors=30)])  # pending: 1 of 3 windows
    for i in range(5, 9):  # held windows with breaching backlog data
        lagging(sc, i, watermark_ms=end_of(4))
        sc.window(i, [agg("x", "eu", i, errors=30)])
    assert sc.engine.stats.pending_dropped_by_hold == 1
    for i in range(9, 14):
        healthy(sc, i)
        sc.window(i, [agg("x", "eu", i, errors=30)])
    # a fresh 3 windows after recovery (9, 10, 11), not at once at window 9
    assert pool_events(sc) == [(11, "errors", "x", AlertStatus.FIRING)]


def test_latency_rules_are_not_held_by_default() -> None:
    sc = Scenario.of(rules_text())
    healthy(sc, 0)
    sc.window(0, [agg("x", "eu", 0)])
    lagging(sc, 1, watermark_ms=end_of(0))
    sc.window(1, [agg("x", "eu", 1, latency_ms=3000.0)])
    assert pool_events(sc) == [(1, "slow", "x", AlertStatus.FIRING)]


def test_only_affected_pools_are_held() -> None:
    sc = Scenario.of(rules_text())
    for i in range(2):
        healthy(sc, i)
        sc.window(i, [agg("a", "eu", i), agg("b", "eu", i)])
    for i in range(2, 8):
        status = PipelineStatus(120_000, True, end_of(i), affected_pools=frozenset({"a"}))
        sc.keep(i, sc.engine.set_pipeline_status(status, now_ms=end_of(i) + LAG_MS))
        sc.window(i, [])
    assert pool_events(sc) == [(4, "silent", "b", AlertStatus.FIRING)]
    (page,) = [e for _, e in sc.events if e.labels["rule_id"] == PIPELINE_RULE_ID]
    assert "1 pool(s): a" in page.annotations["description"]


def test_stale_watermark_is_detected_by_the_clock_alone() -> None:
    sc = Scenario.of(rules_text(max_lag_ms=10**9, for_s=10))
    healthy(sc, 0)
    reported = end_of(0) + LAG_MS
    # the runtime stops reporting; the watermark goes stale 60 s after end_of(0)
    assert sc.engine.next_deadline_ms() == end_of(0) + 60_001
    assert sc.tick(0, end_of(0) + 60_000).events == []
    sc.tick(0, end_of(0) + 60_001)
    assert sc.engine.next_deadline_ms() == end_of(0) + 70_001
    (page,) = sc.tick(0, end_of(0) + 70_001).events
    assert page.status is AlertStatus.FIRING
    assert "data stale" in page.annotations["summary"]
    assert reported < page.starts_at.timestamp() * 1000


@pytest.mark.parametrize(("hold_on_sink_down", "pages"), [(True, 1), (False, 0)])
def test_sink_down_counts_when_configured(hold_on_sink_down: bool, pages: int) -> None:
    sc = Scenario.of(rules_text(hold_on_sink_down=hold_on_sink_down, for_s=0))
    status = PipelineStatus(lag_ms=0, sink_ok=False, watermark_ms=end_of(0))
    sc.keep(0, sc.engine.set_pipeline_status(status, now_ms=end_of(0) + LAG_MS))
    assert len(pipeline_events(sc)) == pages
