"""ProxyWhirl's own round-robin over all four lab proxies, sync threads and async tasks at once.

Nothing here pins a proxy: the truth for each request comes from the lab itself. Every request
carries a unique ``x-test-req`` header; the target records which proxy relayed it (``Via``) and
how often it arrived (ProxyWhirl's retries), the auth proxy records its 407s, and a request
that reached neither went to the dead port (or found no proxy at all).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from proxywhirl.exceptions import ProxyPoolEmptyError

from producer import MetricsProducer
from producer.integrations.proxywhirl import instrument
from schemas.events import Outcome
from tests.integration_proxywhirl.helpers import (
    DEFAULT_POOL,
    DEFAULT_REGION,
    EXPECTED_LABELS,
    Capture,
    async_rotator,
    expected_proxy_id,
    sync_rotator,
)
from tests.support.proxies import REQUEST_ID_HEADER, ProxyLab

PATHS = ("/ok", "/404", "/500", "/503", "/ok", "/ok")
SYNC_REQUESTS = 24
ASYNC_REQUESTS = 36
ALL_PROXIES = ("healthy", "slow", "auth", "dead")

Truth = tuple[str | None, Outcome, int | None, int]


def _status_outcome(status: int) -> Outcome:
    if status == 407:
        return Outcome.PROXY_AUTH_ERROR
    return Outcome.SUCCESS if status < 400 else Outcome.HTTP_ERROR


def _truth(lab: ProxyLab, request_id: str, result: Any) -> Truth:
    """(proxy, outcome, status, attempts) of one request, from the lab's records only."""
    target_hits = [h for h in lab.target.snapshot() if h.request_id == request_id]
    if target_hits:
        via = {h.via for h in target_hits}
        assert len(via) == 1, f"retries of {request_id} went through several proxies: {via}"
        proxy = next(iter(via)).removeprefix("1.1 ")  # type: ignore[union-attr]
        status = target_hits[-1].status
        return proxy, _status_outcome(status), status, len(target_hits)
    auth_hits = [h for h in lab.auth.snapshot() if h.request_id == request_id]
    if auth_hits:
        return "auth", Outcome.PROXY_AUTH_ERROR, 407, len(auth_hits)
    if isinstance(result, ProxyPoolEmptyError):
        return None, Outcome.NO_PROXY_AVAILABLE, None, 1
    return "dead", Outcome.CONNECTION_ERROR, None, 3


async def test_round_robin_mix_matches_what_the_lab_saw(
    lab: ProxyLab, producer: MetricsProducer, capture: Capture
) -> None:
    sync_r = sync_rotator(lab, ALL_PROXIES)
    async_r = async_rotator(lab, ALL_PROXIES)
    instrument(sync_r, producer, pool=DEFAULT_POOL, region=DEFAULT_REGION)
    instrument(async_r, producer, pool=DEFAULT_POOL, region=DEFAULT_REGION)
    ids = itertools.count()
    results: dict[str, Any] = {}

    def sync_call(path: str) -> None:
        request_id = f"sync-{next(ids)}"
        try:
            results[request_id] = sync_r.get(
                lab.target_url(path), headers={REQUEST_ID_HEADER: request_id}
            )
        except Exception as exc:
            results[request_id] = exc

    async def async_call(path: str) -> None:
        request_id = f"async-{next(ids)}"
        try:
            results[request_id] = await async_r.get(
                lab.target_url(path), headers={REQUEST_ID_HEADER: request_id}
            )
        except Exception as exc:
            results[request_id] = exc

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        sync_done = asyncio.gather(
            *(
                asyncio.wrap_future(pool.submit(sync_call, PATHS[i % len(PATHS)]))
                for i in range(SYNC_REQUESTS)
            )
        )
        async with async_r:
            await asyncio.gather(
                *(async_call(PATHS[i % len(PATHS)]) for i in range(ASYNC_REQUESTS))
            )
        await sync_done
    wall_ms = (time.perf_counter() - started) * 1000
    sync_r.__exit__(None, None, None)

    assert len(results) == SYNC_REQUESTS + ASYNC_REQUESTS
    truths = [_truth(lab, request_id, result) for request_id, result in results.items()]
    # The round-robin really spread the load (otherwise this test would prove little).
    assert {t[0] for t in truths} >= {"healthy", "slow", "auth"}
    assert any(isinstance(r, httpx.Response) for r in results.values())

    assert await producer.aflush(timeout_s=5.0)
    events = capture.events()
    names = {expected_proxy_id(p): name for name, p in lab.lab_proxies().items()}
    observed = Counter(
        (names.get(e.proxy_id or ""), e.outcome, e.status_code, e.attempts) for e in events
    )
    assert observed == Counter(truths)
    for event in events:
        name = names.get(event.proxy_id or "")
        expected_labels = EXPECTED_LABELS[name] if name else (DEFAULT_POOL, DEFAULT_REGION)
        assert (event.pool, event.region) == expected_labels
        assert 0 < event.latency_ms <= wall_ms
