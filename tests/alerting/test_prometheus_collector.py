"""api.prometheus.WindowAggregateCollector: gauges from the latest closed window per (pool, region).

Values are compared with what the aggregate itself derives; proxy ids never become labels; an
empty window exposes no ratios; a vanished pool's series disappear after the staleness bound; the
HTTP exposition answers with the Prometheus text format.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.parser import text_string_to_metric_families

from api.prometheus import METRIC_NAMES, WindowAggregateCollector
from schemas.aggregates import LatencyHistogram, Scope, WindowAggregate
from schemas.events import Outcome
from schemas.latency_buckets import bucket_key

WINDOW_S = 10


class Clock:
    def __init__(self, now_s: float) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


def aggregate(
    pool: str,
    region: str,
    *,
    end_s: int,
    latencies_ms: list[float],
    outcomes: dict[Outcome, int],
    status_5xx: int = 0,
    proxy_id: str | None = None,
) -> WindowAggregate:
    buckets: dict[int, int] = {}
    for latency in latencies_ms:
        key = bucket_key(latency)
        buckets[key] = buckets.get(key, 0) + 1
    requests = sum(outcomes.values())
    assert requests == len(latencies_ms)
    return WindowAggregate(
        scope=Scope(pool=pool, region=region, proxy_id=proxy_id),
        window_start_ms=(end_s - WINDOW_S) * 1000,
        window_end_ms=end_s * 1000,
        window_s=WINDOW_S,
        requests=requests,
        successes=outcomes.get(Outcome.SUCCESS, 0),
        outcomes=outcomes,
        status_classes={"5xx": status_5xx, "2xx": requests - status_5xx},
        latency=LatencyHistogram(
            buckets=buckets,
            count=requests,
            sum_ms=sum(latencies_ms),
            min_ms=min(latencies_ms, default=None),
            max_ms=max(latencies_ms, default=None),
        ),
    )


def scrape(
    collector: WindowAggregateCollector,
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted(labels.items()))


@pytest.fixture
def clock() -> Clock:
    return Clock(1_800_000_000.0)


def test_gauges_match_the_aggregate(clock: Clock) -> None:
    collector = WindowAggregateCollector(clock_s=clock)
    latencies = [float(x) for x in range(1, 201)]
    outcomes = {Outcome.SUCCESS: 150, Outcome.TIMEOUT: 30, Outcome.HTTP_ERROR: 20}
    agg = aggregate(
        "poolA",
        "eu",
        end_s=int(clock.now_s),
        latencies_ms=latencies,
        outcomes=outcomes,
        status_5xx=20,
    )
    collector.observe(agg)
    series = scrape(collector)
    scope = {"pool": "poolA", "region": "eu"}
    assert series[key("proxywhirl_window_requests", **scope)] == agg.requests
    assert series[key("proxywhirl_window_success_ratio", **scope)] == pytest.approx(
        agg.success_rate
    )
    assert series[key("proxywhirl_window_error_ratio", **scope)] == pytest.approx(agg.error_rate)
    assert series[key("proxywhirl_window_status_5xx_ratio", **scope)] == pytest.approx(20 / 200)
    assert series[key("proxywhirl_window_throughput_rps", **scope)] == pytest.approx(
        agg.throughput_rps
    )
    for outcome in Outcome:
        assert series[key("proxywhirl_window_outcome_ratio", outcome=outcome.value, **scope)] == (
            pytest.approx(agg.outcome_rate(outcome))
        )
    for q, label in [(0.5, "0.5"), (0.95, "0.95"), (0.99, "0.99")]:
        got = series[key("proxywhirl_window_latency_ms", quantile=label, **scope)]
        assert got == pytest.approx(agg.latency.quantile(q))
        exact = sorted(latencies)[int(q * (len(latencies) - 1))]
        assert abs(got - exact) / exact <= 0.01
    assert series[key("proxywhirl_window_end_timestamp_seconds", **scope)] == clock.now_s
    assert {name for name, _ in series} <= METRIC_NAMES


def test_proxy_aggregates_never_become_series(clock: Clock) -> None:
    collector = WindowAggregateCollector(clock_s=clock)
    collector.observe(
        aggregate(
            "poolA",
            "eu",
            end_s=int(clock.now_s),
            latencies_ms=[5.0],
            outcomes={Outcome.SUCCESS: 1},
            proxy_id="ab" * 8,
        )
    )
    series = scrape(collector)
    assert series == {}
    assert all("proxy_id" not in dict(labels) for _, labels in series)


def test_empty_window_exposes_requests_but_no_ratios(clock: Clock) -> None:
    collector = WindowAggregateCollector(clock_s=clock)
    collector.observe(aggregate("idle", "us", end_s=int(clock.now_s), latencies_ms=[], outcomes={}))
    series = scrape(collector)
    assert series[key("proxywhirl_window_requests", pool="idle", region="us")] == 0
    names = {name for name, _ in series}
    assert "proxywhirl_window_error_ratio" not in names
    assert "proxywhirl_window_latency_ms" not in names


def test_only_the_latest_window_counts(clock: Clock) -> None:
    collector = WindowAggregateCollector(clock_s=clock)
    now = int(clock.now_s)
    newer = aggregate(
        "p",
        "r",
        end_s=now,
        latencies_ms=[1.0] * 4,
        outcomes={Outcome.SUCCESS: 1, Outcome.TIMEOUT: 3},
    )
    older = aggregate(
        "p", "r", end_s=now - WINDOW_S, latencies_ms=[1.0], outcomes={Outcome.SUCCESS: 1}
    )
    collector.observe(newer)
    collector.observe(older)  # arrives late: must not replace the newer window
    series = scrape(collector)
    assert series[key("proxywhirl_window_error_ratio", pool="p", region="r")] == 0.75


def test_vanished_pool_disappears_after_staleness(clock: Clock) -> None:
    collector = WindowAggregateCollector(clock_s=clock, staleness_s=60)
    now = int(clock.now_s)
    collector.observe(
        aggregate("gone", "eu", end_s=now, latencies_ms=[2.0], outcomes={Outcome.SUCCESS: 1})
    )
    collector.observe(
        aggregate("alive", "eu", end_s=now, latencies_ms=[2.0], outcomes={Outcome.SUCCESS: 1})
    )
    assert collector.scopes() == [("alive", "eu"), ("gone", "eu")]
    clock.now_s += 50
    collector.observe(
        aggregate("alive", "eu", end_s=now + 50, latencies_ms=[2.0], outcomes={Outcome.SUCCESS: 1})
    )
    clock.now_s += 20  # "gone" last window ended 70 s ago, "alive" 20 s ago
    series = scrape(collector)
    pools = {dict(labels).get("pool") for _, labels in series}
    assert pools == {"alive"}
    assert collector.scopes() == [("alive", "eu")]


@pytest.fixture
def exposition(clock: Clock) -> Iterator[tuple[str, WindowAggregateCollector]]:
    registry = CollectorRegistry()
    collector = WindowAggregateCollector(clock_s=clock)
    registry.register(collector)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield f"http://127.0.0.1:{server.server_port}/metrics", collector
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_http_exposition_content_type_and_body(
    exposition: tuple[str, WindowAggregateCollector], clock: Clock
) -> None:
    url, collector = exposition
    collector.observe(
        aggregate(
            "poolA",
            "eu",
            end_s=int(clock.now_s),
            latencies_ms=[3.0, 4.0],
            outcomes={Outcome.SUCCESS: 1, Outcome.TIMEOUT: 1},
        )
    )
    response = httpx.get(url, timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'proxywhirl_window_error_ratio{pool="poolA",region="eu"} 0.5' in response.text
    openmetrics = httpx.get(
        url, headers={"Accept": "application/openmetrics-text; version=1.0.0"}, timeout=5
    )
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")
