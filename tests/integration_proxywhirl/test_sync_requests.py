"""A synchronous ProxyWhirl rotator over real local proxies: one correct event per request."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from proxywhirl.exceptions import ProxyAuthenticationError, ProxyConnectionError

from producer import MetricsProducer
from producer.integrations.proxywhirl import instrument
from schemas.events import Outcome
from schemas.wire import WireEvent
from tests.integration_proxywhirl.helpers import (
    DEFAULT_POOL,
    DEFAULT_REGION,
    EXPECTED_LABELS,
    PINNED,
    SOURCE_HOST,
    Capture,
    PinnedStrategy,
    expected_proxy_id,
    sync_rotator,
)
from tests.support.proxies import OK_BODY, ProxyLab

TIMEOUT_S = 0.25
SLOW_TARGET_MS = 1_000
SLOW_PROXY_MS = 150


@dataclass(frozen=True)
class Case:
    proxy: str
    method: str
    path: str
    outcome: Outcome
    status: int | None
    attempts: int
    raises: type[BaseException] | None = None
    min_latency_ms: float = 0.0
    kwargs: dict[str, Any] | None = None
    bytes_in: int | None = None
    bytes_out: int = 0


CASES = [
    Case("healthy", "get", "/ok", Outcome.SUCCESS, 200, 1, bytes_in=len(OK_BODY)),
    Case("healthy", "get", "/404", Outcome.HTTP_ERROR, 404, 1),
    # ProxyWhirl counts a 500 as a success; it is an HTTP error.
    Case("healthy", "get", "/500", Outcome.HTTP_ERROR, 500, 1),
    # ProxyWhirl retries a 503 on the same proxy, then raises ProxyConnectionError.
    Case("healthy", "get", "/503", Outcome.HTTP_ERROR, 503, 3, raises=ProxyConnectionError),
    Case("healthy", "get", "/429", Outcome.RATE_LIMITED, 429, 1),
    # ProxyWhirl raises ProxyAuthenticationError for the target's 401 too: still an HTTP error.
    Case("healthy", "get", "/401", Outcome.HTTP_ERROR, 401, 1, raises=ProxyAuthenticationError),
    Case(
        "healthy",
        "get",
        f"/slow?ms={SLOW_TARGET_MS}",
        Outcome.TIMEOUT,
        None,
        3,
        raises=ProxyConnectionError,
        min_latency_ms=3 * TIMEOUT_S * 1000,
        kwargs={"timeout": TIMEOUT_S},
    ),
    # POST is not retried by ProxyWhirl; its body counts as bytes_out.
    Case(
        "healthy",
        "post",
        "/ok",
        Outcome.SUCCESS,
        200,
        1,
        kwargs={"content": b"p" * 1234},
        bytes_out=1234,
    ),
    Case("healthy", "get", "/bytes?n=5000", Outcome.SUCCESS, 200, 1, bytes_in=5000),
    Case("slow", "get", "/ok", Outcome.SUCCESS, 200, 1, min_latency_ms=SLOW_PROXY_MS),
    Case(
        "slow",
        "get",
        "/503",
        Outcome.HTTP_ERROR,
        503,
        3,
        raises=ProxyConnectionError,
        min_latency_ms=3 * SLOW_PROXY_MS,
    ),
    Case("auth", "get", "/ok", Outcome.PROXY_AUTH_ERROR, 407, 1, raises=ProxyAuthenticationError),
    Case("dead", "get", "/ok", Outcome.CONNECTION_ERROR, None, 3, raises=ProxyConnectionError),
]


def _run_case(rotator: Any, lab: ProxyLab, case: Case) -> tuple[float, BaseException | None]:
    token = PINNED.set(case.proxy)
    started = time.perf_counter()
    error: BaseException | None = None
    try:
        response = getattr(rotator, case.method)(lab.target_url(case.path), **(case.kwargs or {}))
        assert isinstance(response, httpx.Response)
        assert response.status_code == case.status
    except Exception as exc:
        error = exc
    finally:
        PINNED.reset(token)
    return (time.perf_counter() - started) * 1000, error


def _check_event(event: WireEvent, case: Case, lab: ProxyLab, wall_ms: float) -> None:
    pool, region = EXPECTED_LABELS[case.proxy]
    assert event.outcome == case.outcome, case
    assert event.status_code == case.status, case
    assert event.attempts == case.attempts, case
    assert (event.pool, event.region) == (pool, region), case
    assert event.proxy_id == expected_proxy_id(lab.lab_proxies()[case.proxy]), case
    assert event.source_host == SOURCE_HOST
    assert event.target_domain is None  # include_domain is off by default
    # Our own latency: at least what the lab imposed, at most what the caller measured.
    assert case.min_latency_ms <= event.latency_ms <= wall_ms, (case, event.latency_ms, wall_ms)
    if case.bytes_in is not None:
        assert event.bytes_in == case.bytes_in, case
    assert event.bytes_out == case.bytes_out, case


def test_each_sync_request_emits_one_correct_event(
    lab: ProxyLab, producer: MetricsProducer, capture: Capture
) -> None:
    rotator = sync_rotator(lab, ("healthy", "slow", "auth", "dead"), strategy=PinnedStrategy())
    handle = instrument(rotator, producer, pool=DEFAULT_POOL, region=DEFAULT_REGION)
    for seen, case in enumerate(CASES):
        wall_ms, error = _run_case(rotator, lab, case)
        if case.raises is None:
            assert error is None, (case, error)
        else:
            assert isinstance(error, case.raises), (case, error)
        assert producer.flush(timeout_s=5.0)
        events = capture.events()
        assert len(events) == seen + 1, f"expected exactly one new event for {case}"
        _check_event(events[-1], case, lab, wall_ms)
    assert handle.stats().internal_errors == 0
    assert producer.stats().rejected == 0


def test_user_keyword_arguments_pass_through(
    lab: ProxyLab, producer: MetricsProducer, capture: Capture
) -> None:
    """headers=, params= and the user's own auth= reach the target unchanged."""
    rotator = sync_rotator(lab, ("healthy",))
    instrument(rotator, producer)
    response = rotator.get(
        lab.target_url("/ok"),
        headers={"x-test-req": "kw-1"},
        params={"q": "1"},
        auth=("target-user", "target-pw"),
    )
    assert response.status_code == 200
    hit = lab.target.last_hit("/ok")
    assert (hit.request_id, hit.query) == ("kw-1", "q=1")
    assert hit.authorization is not None
    assert hit.authorization.startswith("Basic ")
    assert producer.flush(timeout_s=5.0)
    (event,) = capture.events()
    assert (event.outcome, event.status_code) == (Outcome.SUCCESS, 200)


class RetryOn401Auth(httpx.Auth):
    """A two-step user auth flow: try without credentials, answer the 401 challenge."""

    def __init__(self) -> None:
        self.challenges = 0

    def auth_flow(self, request: httpx.Request) -> Any:
        response = yield request
        if response.status_code == 401:
            self.challenges += 1
            request.headers["Authorization"] = "Bearer good-token"
            yield request


def test_multi_step_user_auth_flow_is_delegated(
    lab: ProxyLab, producer: MetricsProducer, capture: Capture
) -> None:
    rotator = sync_rotator(lab, ("healthy",))
    instrument(rotator, producer)
    user_auth = RetryOn401Auth()
    response = rotator.get(lab.target_url("/needs-token"), auth=user_auth)
    assert response.status_code == 200
    assert user_auth.challenges == 1
    assert producer.flush(timeout_s=5.0)
    (event,) = capture.events()
    # One ProxyWhirl attempt (two HTTP exchanges inside the user's flow); the final status.
    assert (event.outcome, event.status_code, event.attempts) == (Outcome.SUCCESS, 200, 1)


@pytest.mark.parametrize("include_domain", [True, False])
def test_target_domain_only_when_enabled(
    lab: ProxyLab, producer: MetricsProducer, capture: Capture, include_domain: bool
) -> None:
    rotator = sync_rotator(lab, ("healthy",))
    instrument(rotator, producer, include_domain=include_domain)
    rotator.get(lab.target_url("/ok/private/path?token=abc", host="localhost"))
    rotator.get(lab.target_url("/ok"))  # an IP-literal target never becomes a domain
    assert producer.flush(timeout_s=5.0)
    domains = [event.target_domain for event in capture.events()]
    assert domains == (["localhost", None] if include_domain else [None, None])


def test_callable_auth_url_credentials_and_streamed_body(
    lab: ProxyLab, producer: MetricsProducer, capture: Capture
) -> None:
    rotator = sync_rotator(lab, ("healthy",))
    instrument(rotator, producer)

    def bearer(request: httpx.Request) -> httpx.Request:
        request.headers["Authorization"] = "Bearer good-token"
        return request

    assert rotator.get(lab.target_url("/needs-token"), auth=bearer).status_code == 200
    # Credentials in the target URL become Basic auth, as httpx does without an auth= value.
    url_with_credentials = lab.target_url("/ok").replace("http://", "http://t-user:t-pw@")
    assert rotator.get(url_with_credentials).status_code == 200
    assert lab.target.last_hit("/ok").authorization == "Basic dC11c2VyOnQtcHc="
    streamed = iter([b"ab", b"cd", b"ef"])
    response = rotator.post(
        lab.target_url("/ok"), content=streamed, headers={"Content-Length": "6"}
    )
    assert response.status_code == 200
    assert lab.target.last_hit("/ok").body_len == 6
    assert producer.flush(timeout_s=5.0)
    events = capture.events()
    assert [(e.outcome, e.status_code) for e in events] == [(Outcome.SUCCESS, 200)] * 3
    assert events[-1].bytes_out == 6
