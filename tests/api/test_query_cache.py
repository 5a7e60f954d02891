"""The shared answer cache of the read routes: one computation per question at a time, answers
kept for ``cache_ttl_s`` and never longer, failures never kept, bounded."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from rest_support import build_app, client

from api.query_cache import QueryCache
from stream_app.storage.client import StorageClient
from stream_app.storage.settings import StorageSettings


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


async def test_clients_asking_the_same_at_once_share_one_computation() -> None:
    cache = QueryCache(2.0)
    calls = 0
    release = asyncio.Event()

    async def compute() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return "answer"

    waiters = [asyncio.create_task(cache.get(("summary", None), compute)) for _ in range(10)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiters) == ["answer"] * 10
    assert calls == 1
    assert (cache.misses, cache.hits) == (1, 9)


async def test_answers_are_kept_for_the_time_to_live_only() -> None:
    clock = Clock()
    cache = QueryCache(2.0, clock=clock)
    answers = iter(["first", "second"])

    async def compute() -> str:
        return next(answers)

    assert await cache.get("k", compute) == "first"
    clock.now_s += 1.9
    assert await cache.get("k", compute) == "first"
    clock.now_s += 0.2
    assert await cache.get("k", compute) == "second"


async def test_a_failure_reaches_every_waiter_and_is_not_kept() -> None:
    cache = QueryCache(2.0)
    release = asyncio.Event()

    async def failing() -> str:
        await release.wait()
        raise RuntimeError("storage down")

    waiters = [asyncio.create_task(cache.get("k", failing)) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)

    async def fine() -> str:
        return "back"

    assert await cache.get("k", fine) == "back"


async def test_zero_time_to_live_turns_the_cache_off() -> None:
    cache = QueryCache(0)
    calls = 0

    async def compute() -> int:
        nonlocal calls
        calls += 1
        return calls

    assert [await cache.get("k", compute) for _ in range(3)] == [1, 2, 3]


async def test_the_cache_is_bounded_oldest_first() -> None:
    cache = QueryCache(60.0, max_entries=2)

    async def value(v: int) -> int:
        return v

    for key in (1, 2, 3):
        await cache.get(key, lambda k=key: value(k))  # type: ignore[misc]
    calls: list[int] = []

    async def recompute() -> int:
        calls.append(1)
        return -1

    assert await cache.get(3, recompute) == 3  # kept
    assert await cache.get(1, recompute) == -1  # the oldest was dropped
    assert calls == [1]


@pytest.mark.parametrize("ttl_s", [0.5, 2.0, 10.0])
def test_buckets_age_answers_out_together(ttl_s: float) -> None:
    cache = QueryCache(ttl_s)
    assert cache.bucket(1000.0) == cache.bucket(1000.0 + ttl_s * 0.99 - (1000.0 % ttl_s))
    assert cache.bucket(1000.0) != cache.bucket(1000.0 + ttl_s)


async def test_the_summary_route_reads_storage_once_for_clients_asking_together(
    api_storage: tuple[StorageSettings, StorageClient],
) -> None:
    now = 1_800_000_000_000
    app = build_app(api_storage, now)
    queries = app.state.queries
    reads = 0
    latest = queries.latest_windows

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        return latest(*args, **kwargs)

    queries.latest_windows = counting
    async with client(app) as http:
        answers = await asyncio.gather(*(http.get("/api/v1/summary") for _ in range(8)))
        assert {a.status_code for a in answers} == {200}
        assert reads == 1
        other = await http.get("/api/v1/summary", params={"pool": "alpha"})
        assert other.status_code == 200
        assert reads == 2  # another question: another read


async def test_every_metric_of_a_scope_shares_one_series_read(
    api_storage: tuple[StorageSettings, StorageClient],
) -> None:
    """The dashboard asks six or more metrics of one scope at once: storage is read once."""
    now = 1_800_000_000_000
    app = build_app(api_storage, now)
    queries = app.state.queries
    reads = 0
    series = queries.series

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        return series(*args, **kwargs)

    queries.series = counting
    metrics = ["success_rate", "error_rate", "latency_p50_ms", "latency_p95_ms", "throughput_rps"]
    async with client(app) as http:
        answers = await asyncio.gather(
            *(
                http.get("/api/v1/series", params={"metric": m, "pool": "alpha", "range": "6h"})
                for m in metrics
            ),
            http.get(
                "/api/v1/series",
                params={"metric": "outcome_rate", "outcome": "timeout", "pool": "alpha",
                        "range": "6h"},
            ),
        )  # fmt: skip
        assert [a.status_code for a in answers] == [200] * 6
        assert [a.json()["metric"] for a in answers] == [*metrics, "outcome_rate"]
        assert len({a.json()["step_s"] for a in answers}) == 1
        assert reads == 1
        other = await http.get(
            "/api/v1/series", params={"metric": "error_rate", "pool": "beta", "range": "6h"}
        )
        assert other.status_code == 200
        assert reads == 2  # another scope: another read
