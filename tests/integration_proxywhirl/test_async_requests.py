"""An AsyncProxyWhirl rotator over real local proxies, many requests at once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import httpx
from proxywhirl.exceptions import ProxyAuthenticationError, ProxyConnectionError

from producer import MetricsProducer
from producer.integrations.proxywhirl import instrument
from schemas.events import Outcome
from tests.integration_proxywhirl.helpers import (
    DEFAULT_POOL,
    DEFAULT_REGION,
    EXPECTED_LABELS,
    PINNED,
    Capture,
    PinnedStrategy,
    async_rotator,
    expected_proxy_id,
)
from tests.support.proxies import ProxyLab

TIMEOUT_S = 0.25
SLOW_PROXY_MS = 150

# (proxy, path, expected outcome, status, attempts, exception raised to the caller, min latency)
# ProxyWhirl's async path differs from the sync one: it does not retry on 502/503/504 (a 503
# comes back as a response after one attempt) but retries every exception, timeouts included.
ASYNC_CASES: list[tuple[str, str, Outcome, int | None, int, type[Exception] | None, float]] = [
    ("healthy", "/ok", Outcome.SUCCESS, 200, 1, None, 0.0),
    ("healthy", "/404", Outcome.HTTP_ERROR, 404, 1, None, 0.0),
    ("healthy", "/500", Outcome.HTTP_ERROR, 500, 1, None, 0.0),
    ("healthy", "/503", Outcome.HTTP_ERROR, 503, 1, None, 0.0),
    ("healthy", "/429", Outcome.RATE_LIMITED, 429, 1, None, 0.0),
    (
        "healthy",
        "/slow?ms=1000",
        Outcome.TIMEOUT,
        None,
        3,
        ProxyConnectionError,
        3 * TIMEOUT_S * 1000,
    ),
    ("slow", "/ok", Outcome.SUCCESS, 200, 1, None, SLOW_PROXY_MS),
    ("slow", "/500", Outcome.HTTP_ERROR, 500, 1, None, SLOW_PROXY_MS),
    ("auth", "/ok", Outcome.PROXY_AUTH_ERROR, 407, 1, ProxyAuthenticationError, 0.0),
    ("dead", "/ok", Outcome.CONNECTION_ERROR, None, 3, ProxyConnectionError, 0.0),
]
REPEAT = 4


async def _one(rotator: Any, lab: ProxyLab, proxy: str, path: str) -> tuple[Any, float]:
    PINNED.set(proxy)  # this task's own context
    # Only the request meant to time out gets a short timeout: with many requests in flight a
    # short pool timeout would make ProxyWhirl retry others at random (PoolTimeout).
    kwargs = {"timeout": TIMEOUT_S} if path.startswith("/slow") else {}
    started = time.perf_counter()
    try:
        result: Any = await rotator.get(lab.target_url(path), **kwargs)
    except Exception as exc:
        result = exc
    return result, (time.perf_counter() - started) * 1000


async def test_concurrent_async_requests_each_emit_one_correct_event(
    lab: ProxyLab, producer: MetricsProducer, capture: Capture
) -> None:
    rotator = async_rotator(lab, ("healthy", "slow", "auth", "dead"), strategy=PinnedStrategy())
    handle = instrument(rotator, producer, pool=DEFAULT_POOL, region=DEFAULT_REGION)
    plan = [case for case in ASYNC_CASES for _ in range(REPEAT)]
    async with rotator:
        started = time.perf_counter()
        results = await asyncio.gather(*(_one(rotator, lab, c[0], c[1]) for c in plan))
        batch_wall_ms = (time.perf_counter() - started) * 1000

    for case, (result, _wall_ms) in zip(plan, results, strict=True):
        raises = case[5]
        if raises is None:
            assert isinstance(result, httpx.Response), (case, result)
            assert result.status_code == case[3]
        else:
            assert isinstance(result, raises), (case, result)

    assert await producer.aflush(timeout_s=5.0)
    events = capture.events()
    assert len(events) == len(plan)
    ids = {name: expected_proxy_id(p) for name, p in lab.lab_proxies().items()}
    by_id = {proxy_id: name for name, proxy_id in ids.items()}
    observed = Counter(
        (by_id[e.proxy_id or ""], e.outcome, e.status_code, e.attempts) for e in events
    )
    expected = Counter((c[0], c[2], c[3], c[4]) for c in plan)
    assert observed == expected
    for event in events:
        name = by_id[event.proxy_id or ""]
        assert (event.pool, event.region) == EXPECTED_LABELS[name]
        case = next(
            c for c in ASYNC_CASES if (c[0], c[2], c[3]) == (name, event.outcome, event.status_code)
        )
        # ProxyWhirl's async path records latency 0; ours is real, and bounded by the batch.
        assert case[6] <= event.latency_ms <= batch_wall_ms
        assert event.latency_ms > 0
    assert handle.stats().internal_errors == 0
    assert producer.stats().rejected == 0


async def test_cancelled_request_emits_cancelled(
    lab: ProxyLab, producer: MetricsProducer, capture: Capture
) -> None:
    rotator = async_rotator(lab, ("healthy",))
    instrument(rotator, producer)
    async with rotator:
        task = asyncio.create_task(rotator.get(lab.target_url("/slow?ms=3000")))

        await asyncio.to_thread(lab.target.wait_received, "/slow?ms=3000", 5.0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        else:
            raise AssertionError("the request was not cancelled")
    assert await producer.aflush(timeout_s=5.0)
    (event,) = capture.events()
    assert event.outcome == Outcome.CANCELLED
    assert event.status_code is None
    assert event.attempts == 1


class RetryOn401Auth(httpx.Auth):
    """A two-step user auth flow (async side): answer the target's 401 challenge."""

    def auth_flow(self, request: httpx.Request) -> Any:
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = "Bearer good-token"
            yield request


async def test_user_auth_flows_work_on_the_async_path(
    lab: ProxyLab, producer: MetricsProducer, capture: Capture
) -> None:
    rotator = async_rotator(lab, ("healthy",))
    instrument(rotator, producer)
    async with rotator:
        first = await rotator.get(lab.target_url("/needs-token"), auth=RetryOn401Auth())
        second = await rotator.get(lab.target_url("/ok"), auth=("t-user", "t-pw"))
    assert (first.status_code, second.status_code) == (200, 200)
    assert lab.target.last_hit("/ok").authorization == "Basic dC11c2VyOnQtcHc="
    assert await producer.aflush(timeout_s=5.0)
    events = capture.events()
    assert [(e.outcome, e.status_code, e.attempts) for e in events] == [
        (Outcome.SUCCESS, 200, 1),
        (Outcome.SUCCESS, 200, 1),
    ]
