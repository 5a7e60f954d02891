"""The outcome rules of proxywhirl_outcomes, on the exception shapes httpx and ProxyWhirl raise."""

from __future__ import annotations

import asyncio
import itertools
import ssl

import httpx
import pytest
from proxywhirl.exceptions import (
    ProxyAuthenticationError,
    ProxyConnectionError,
    ProxyPoolEmptyError,
    RequestQueueFullError,
)

from producer.integrations.proxywhirl_outcomes import (
    MAX_CHAIN_DEPTH,
    classify,
    exception_chain,
    outcome_for_status,
)
from schemas.events import Outcome


def chained(*layers: BaseException) -> BaseException:
    """``layers[0]`` raised from ``layers[1]`` raised from ... (outermost first)."""
    for outer, inner in itertools.pairwise(layers):
        outer.__cause__ = inner
    return layers[0]


def wrapped(exc: BaseException) -> BaseException:
    """How ProxyWhirl's sync path surfaces a transport error after its retries."""
    return chained(
        ProxyConnectionError("Request failed: Request failed after 3 attempts"),
        ProxyConnectionError("Request failed after 3 attempts"),
        exc,
    )


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (wrapped(httpx.ReadTimeout("timed out")), Outcome.TIMEOUT),
        (wrapped(httpx.ConnectTimeout("timed out")), Outcome.TIMEOUT),
        (wrapped(httpx.PoolTimeout("no connection")), Outcome.TIMEOUT),
        (wrapped(TimeoutError()), Outcome.TIMEOUT),
        (wrapped(httpx.ConnectError("[Errno 111] Connection refused")), Outcome.CONNECTION_ERROR),
        (wrapped(httpx.ReadError("reset")), Outcome.CONNECTION_ERROR),
        (wrapped(httpx.RemoteProtocolError("disconnected")), Outcome.CONNECTION_ERROR),
        (wrapped(ConnectionResetError()), Outcome.CONNECTION_ERROR),
        (
            wrapped(chained(httpx.ConnectError("cert"), ssl.SSLCertVerificationError("bad"))),
            Outcome.TLS_ERROR,
        ),
        # httpcore puts the ssl error into the arguments instead of chaining it.
        (
            wrapped(httpx.ConnectError(ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER]"))),  # type: ignore[arg-type]
            Outcome.TLS_ERROR,
        ),
        (
            wrapped(httpx.ProxyError("407 Proxy Authentication Required")),
            Outcome.PROXY_AUTH_ERROR,
        ),
        (wrapped(httpx.ProxyError("502 Bad Gateway")), Outcome.PROXY_ERROR),
        (wrapped(httpx.UnsupportedProtocol("ftp")), Outcome.INTERNAL),
        (wrapped(httpx.TooManyRedirects("loop")), Outcome.INTERNAL),
        (ProxyPoolEmptyError("none"), Outcome.NO_PROXY_AVAILABLE),
        (ProxyAuthenticationError("407"), Outcome.PROXY_AUTH_ERROR),
        (RequestQueueFullError(queue_size=1), Outcome.RATE_LIMITED),
        (ValueError("a bug somewhere"), Outcome.INTERNAL),
    ],
)
def test_exceptions_map_to_outcomes(error: BaseException, expected: Outcome) -> None:
    assert classify(error, status=None, attempts=3) == expected


def test_a_transport_error_wins_over_an_earlier_response() -> None:
    # The response belonged to the last attempt, but the body read then timed out.
    assert classify(wrapped(httpx.ReadTimeout("")), status=200, attempts=1) == Outcome.TIMEOUT


def test_an_error_response_of_the_last_attempt_decides_when_proxywhirl_raised() -> None:
    retried_503 = wrapped(ProxyConnectionError("Status code 503"))
    assert classify(retried_503, status=503, attempts=3) == Outcome.HTTP_ERROR
    target_401 = ProxyAuthenticationError("Proxy authentication failed (401)")
    assert classify(target_401, status=401, attempts=1) == Outcome.HTTP_ERROR
    proxy_407 = ProxyAuthenticationError("Proxy authentication failed (407)")
    assert classify(proxy_407, status=407, attempts=1) == Outcome.PROXY_AUTH_ERROR


def test_proxywhirl_refusals_before_any_attempt() -> None:
    limited = ProxyConnectionError("Rate limit exceeded for proxy 1234. Please wait")
    assert classify(limited, status=None, attempts=0) == Outcome.RATE_LIMITED
    breaker = chained(
        ProxyConnectionError("Request failed: Circuit breaker is open for this proxy"),
        ProxyConnectionError("Circuit breaker is open for this proxy"),
    )
    assert classify(breaker, status=None, attempts=0) == Outcome.NO_PROXY_AVAILABLE
    total_timeout = ProxyConnectionError("Request timeout after 5.00s")
    assert classify(total_timeout, status=None, attempts=2) == Outcome.TIMEOUT
    assert classify(ProxyConnectionError("odd"), status=None, attempts=2) == (
        Outcome.CONNECTION_ERROR
    )


def test_cancellation_only_counts_when_it_is_the_raised_exception() -> None:
    assert classify(asyncio.CancelledError(), status=None) == Outcome.CANCELLED
    assert classify(KeyboardInterrupt(), status=200) == Outcome.CANCELLED
    # anyio cancels a scope on a deadline: the CancelledError sits deep inside a ReadTimeout.
    deep = wrapped(chained(httpx.ReadTimeout(""), TimeoutError(), asyncio.CancelledError()))
    assert classify(deep, status=None) == Outcome.TIMEOUT


@pytest.mark.parametrize(
    ("status", "proxy_status_error", "expected"),
    [
        (200, False, Outcome.SUCCESS),
        (304, False, Outcome.SUCCESS),
        (404, False, Outcome.HTTP_ERROR),
        (500, False, Outcome.HTTP_ERROR),
        (502, False, Outcome.HTTP_ERROR),
        (502, True, Outcome.PROXY_ERROR),
        (404, True, Outcome.HTTP_ERROR),
        (407, False, Outcome.PROXY_AUTH_ERROR),
        (429, False, Outcome.RATE_LIMITED),
    ],
)
def test_status_rules(status: int, proxy_status_error: bool, expected: Outcome) -> None:
    assert outcome_for_status(status, proxy_status_error=proxy_status_error) == expected
    assert classify(None, status=status, proxy_status_error=proxy_status_error) == expected


def test_exception_chain_stops_on_cycles_and_depth() -> None:
    first, second = ValueError("a"), ValueError("b")
    first.__cause__, second.__cause__ = second, first
    assert exception_chain(first) == [first, second]
    deep = [ValueError(str(i)) for i in range(MAX_CHAIN_DEPTH + 10)]
    assert len(exception_chain(chained(*deep))) == MAX_CHAIN_DEPTH


def test_suppressed_context_is_not_followed() -> None:
    def fail() -> None:
        try:
            raise httpx.ReadTimeout("inner")
        except httpx.ReadTimeout:
            raise ValueError("outer") from None

    with pytest.raises(ValueError, match="outer") as info:
        fail()
    assert info.value.__context__ is not None  # there, but suppressed
    assert exception_chain(info.value) == [info.value]
    assert classify(info.value, status=None) == Outcome.INTERNAL
