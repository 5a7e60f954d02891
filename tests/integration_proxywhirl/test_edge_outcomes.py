"""Outcomes that need a particular setup: TLS through CONNECT, ProxyWhirl's own refusals."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from proxywhirl import ProxyConfiguration, ProxyWhirl
from proxywhirl.exceptions import ProxyConnectionError, ProxyPoolEmptyError

from producer import MetricsProducer
from producer.integrations.proxywhirl import instrument
from schemas.events import Outcome
from schemas.wire import WireEvent
from tests.integration_proxywhirl.helpers import (
    DEFAULT_POOL,
    DEFAULT_REGION,
    FAST_RETRIES,
    Capture,
    async_rotator,
    expected_proxy_id,
    lab_proxy_models,
    sync_rotator,
)
from tests.support.proxies import OK_BODY, ProxyLab


@pytest.fixture(scope="module")
def tls_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyLab]:
    with ProxyLab(tls_directory=tmp_path_factory.mktemp("tls")) as running:
        yield running


def _only_event(producer: MetricsProducer, capture: Capture) -> WireEvent:
    assert producer.flush(timeout_s=5.0)
    events = capture.events()
    assert len(events) == 1, events
    return events[0]


def test_untrusted_certificate_through_connect_is_a_tls_error(
    tls_lab: ProxyLab, producer: MetricsProducer, capture: Capture
) -> None:
    rotator = sync_rotator(tls_lab, ("healthy",))
    instrument(rotator, producer)
    with pytest.raises(ProxyConnectionError):
        rotator.get(tls_lab.tls_target_url("/ok"))
    event = _only_event(producer, capture)
    # httpx raises ConnectError (caused by the certificate failure); ProxyWhirl retries it.
    assert (event.outcome, event.status_code, event.attempts) == (Outcome.TLS_ERROR, None, 3)


def test_https_through_a_connect_tunnel_succeeds(
    tls_lab: ProxyLab, producer: MetricsProducer, capture: Capture
) -> None:
    rotator = ProxyWhirl(
        proxies=lab_proxy_models(tls_lab, ("healthy",)),
        config=ProxyConfiguration(verify_ssl=False),
        retry_policy=FAST_RETRIES,
        bootstrap=False,
    )
    instrument(rotator, producer)
    response = rotator.get(tls_lab.tls_target_url("/ok"))
    assert response.status_code == 200
    assert tls_lab.healthy.snapshot()[-1].method == "CONNECT"
    event = _only_event(producer, capture)
    assert (event.outcome, event.status_code, event.bytes_in) == (
        Outcome.SUCCESS,
        200,
        len(OK_BODY),
    )
    assert event.proxy_id == expected_proxy_id(tls_lab.lab_proxies()["healthy"])


def test_connect_refused_with_407_is_a_proxy_auth_error(
    tls_lab: ProxyLab, producer: MetricsProducer, capture: Capture
) -> None:
    rotator = sync_rotator(tls_lab, ("auth",))
    instrument(rotator, producer)
    with pytest.raises(ProxyConnectionError):
        rotator.get(tls_lab.tls_target_url("/ok"))
    event = _only_event(producer, capture)
    # The CONNECT answer never becomes a response (httpx raises ProxyError), so no status.
    assert (event.outcome, event.status_code, event.attempts) == (Outcome.PROXY_AUTH_ERROR, None, 1)


def test_a_502_the_proxy_generated_itself_is_a_proxy_error(
    lab: ProxyLab, producer: MetricsProducer, capture: Capture
) -> None:
    """The proxy cannot reach the target: its 502 carries an RFC 9209 Proxy-Status error."""
    rotator = sync_rotator(lab, ("healthy",))
    instrument(rotator, producer)
    unreachable = f"http://127.0.0.1:{lab.dead_port}/ok"
    with pytest.raises(ProxyConnectionError):  # ProxyWhirl retries a 502, then raises
        rotator.get(unreachable)
    response = rotator.get(lab.target_url("/no-such-route"))  # the target itself answers 404
    assert response.status_code == 404
    assert producer.flush(timeout_s=5.0)
    proxy_502, target_404 = capture.events()
    assert (proxy_502.outcome, proxy_502.status_code, proxy_502.attempts) == (
        Outcome.PROXY_ERROR,
        502,
        3,
    )
    assert (target_404.outcome, target_404.status_code) == (Outcome.HTTP_ERROR, 404)


class OneRequestLimiter:
    """Stands in for ProxyWhirl's ``SyncRateLimiter`` (only ``check_limit`` is called):
    proxywhirl 0.3.3's own limiter cannot be imported with pyrate-limiter 4.x
    (``BucketFullException`` is gone)."""

    def __init__(self) -> None:
        self.calls = 0

    def check_limit(self, proxy_id: str) -> bool:
        self.calls += 1
        return self.calls <= 1


async def test_async_path_retries_a_refused_connect(
    tls_lab: ProxyLab, producer: MetricsProducer, capture: Capture
) -> None:
    rotator = async_rotator(tls_lab, ("auth",))
    instrument(rotator, producer)
    seen_before = len(tls_lab.auth.snapshot())
    async with rotator:
        with pytest.raises(ProxyConnectionError):
            await rotator.get(tls_lab.tls_target_url("/ok"))
    assert await producer.aflush(timeout_s=5.0)
    (event,) = capture.events()
    # Unlike the sync path, AsyncProxyWhirl retries every exception, httpx.ProxyError included.
    assert (event.outcome, event.status_code, event.attempts) == (Outcome.PROXY_AUTH_ERROR, None, 3)
    assert [hit.method for hit in tls_lab.auth.snapshot()[seen_before:]] == ["CONNECT"] * 3


def test_rate_limited_by_proxywhirl_itself(
    lab: ProxyLab, producer: MetricsProducer, capture: Capture
) -> None:
    rotator = ProxyWhirl(
        proxies=lab_proxy_models(lab, ("healthy",)),
        retry_policy=FAST_RETRIES,
        rate_limiter=OneRequestLimiter(),  # type: ignore[arg-type]
        bootstrap=False,
    )
    instrument(rotator, producer)
    assert rotator.get(lab.target_url("/ok")).status_code == 200
    with pytest.raises(ProxyConnectionError, match="Rate limit"):
        rotator.get(lab.target_url("/ok"))
    assert producer.flush(timeout_s=5.0)
    first, second = capture.events()
    assert first.outcome == Outcome.SUCCESS
    # Refused before anything was sent: no status, one (nominal) attempt, the proxy is known.
    assert (second.outcome, second.status_code, second.attempts) == (Outcome.RATE_LIMITED, None, 1)
    assert second.proxy_id == first.proxy_id


def test_open_circuit_breaker_means_no_proxy_available(
    lab: ProxyLab, producer: MetricsProducer, capture: Capture
) -> None:
    rotator = ProxyWhirl(
        proxies=lab_proxy_models(lab, ("dead",)), retry_policy=FAST_RETRIES, bootstrap=False
    )
    instrument(rotator, producer, pool=DEFAULT_POOL, region=DEFAULT_REGION)
    for _ in range(2):  # 2 requests x 3 attempts open ProxyWhirl's breaker (5 failures)
        with pytest.raises(ProxyConnectionError):
            rotator.get(lab.target_url("/ok"))
    with pytest.raises(ProxyPoolEmptyError):
        rotator.get(lab.target_url("/ok"))
    assert producer.flush(timeout_s=5.0)
    events = capture.events()
    assert [e.outcome for e in events] == [
        Outcome.CONNECTION_ERROR,
        Outcome.CONNECTION_ERROR,
        Outcome.NO_PROXY_AVAILABLE,
    ]
    last = events[-1]
    assert (last.proxy_id, last.pool, last.region, last.status_code) == (
        None,
        DEFAULT_POOL,
        DEFAULT_REGION,
        None,
    )


async def test_empty_async_pool_means_no_proxy_available(
    lab: ProxyLab, producer: MetricsProducer, capture: Capture
) -> None:
    rotator = async_rotator(lab, ())
    instrument(rotator, producer, pool=DEFAULT_POOL)
    with pytest.raises(ProxyPoolEmptyError):
        await rotator.get(lab.target_url("/ok"))
    assert await producer.aflush(timeout_s=5.0)
    (event,) = capture.events()
    assert (event.outcome, event.proxy_id, event.pool) == (
        Outcome.NO_PROXY_AVAILABLE,
        None,
        DEFAULT_POOL,
    )
