"""How each outcome looks on the wire: status codes, latency, bytes and retries.

One :class:`OutcomeProfile` per :class:`~schemas.events.Outcome` keeps generated events internally
consistent: a success carries a 2xx/3xx status, ``http_error`` a 4xx/5xx other than 407 and 429,
``proxy_auth_error`` 407, ``rate_limited`` 429, and transport-level failures (timeout, connection,
TLS, proxy errors) no status at all. Only ``no_proxy_available`` has no proxy id. Attempts above
one come from retries on 502/503/504: a success may have needed a retry, an ``http_error`` with
one of those statuses used every attempt.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Mapping
from dataclasses import dataclass

from schemas.events import Outcome

__all__ = [
    "DEFAULT_ERROR_MIX",
    "PROFILES",
    "RETRIED_STATUSES",
    "ErrorMode",
    "OutcomeProfile",
    "compile_error_mode",
]

RETRIED_STATUSES = frozenset({502, 503, 504})
"""Statuses ProxyWhirl retries: the only reason an event has more than one attempt."""


@dataclass(frozen=True, slots=True)
class OutcomeProfile:
    """Shape of the events of one outcome."""

    outcome: Outcome
    statuses: tuple[int | None, ...]
    """Possible status codes (``None``: the request got no HTTP response)."""
    status_cumulative: tuple[float, ...]
    """Cumulative weights of ``statuses``, ending at 1.0."""
    latency_scale: float
    """Latency relative to a success through the same proxy (ignored for timeouts)."""
    is_timeout: bool
    """Latency is the pool's timeout instead of a draw from the latency distribution."""
    bytes_in_median: int
    """Median response size; 0 when nothing comes back."""
    sends_request: bool
    """Whether request bytes left the host (``bytes_out > 0``)."""
    has_proxy: bool
    """Whether the event names a proxy."""


def _profile(
    outcome: Outcome,
    statuses: Mapping[int | None, float],
    *,
    latency_scale: float,
    bytes_in_median: int,
    is_timeout: bool = False,
    sends_request: bool = True,
    has_proxy: bool = True,
) -> OutcomeProfile:
    total = sum(statuses.values())
    cumulative = tuple(x / total for x in itertools.accumulate(statuses.values()))
    return OutcomeProfile(
        outcome=outcome,
        statuses=tuple(statuses),
        status_cumulative=(*cumulative[:-1], 1.0),
        latency_scale=latency_scale,
        is_timeout=is_timeout,
        bytes_in_median=bytes_in_median,
        sends_request=sends_request,
        has_proxy=has_proxy,
    )


PROFILES: dict[Outcome, OutcomeProfile] = {
    p.outcome: p
    for p in (
        _profile(
            Outcome.SUCCESS,
            {200: 0.92, 204: 0.03, 301: 0.01, 302: 0.02, 304: 0.02},
            latency_scale=1.0,
            bytes_in_median=24_000,
        ),
        _profile(
            Outcome.HTTP_ERROR,
            {400: 0.06, 403: 0.2, 404: 0.22, 500: 0.1, 502: 0.18, 503: 0.16, 504: 0.08},
            latency_scale=0.8,
            bytes_in_median=1_500,
        ),
        _profile(
            Outcome.TIMEOUT, {None: 1.0}, latency_scale=1.0, bytes_in_median=0, is_timeout=True
        ),
        _profile(
            Outcome.CONNECTION_ERROR,
            {None: 1.0},
            latency_scale=0.3,
            bytes_in_median=0,
            sends_request=False,
        ),
        _profile(Outcome.PROXY_ERROR, {None: 1.0}, latency_scale=0.4, bytes_in_median=0),
        _profile(Outcome.PROXY_AUTH_ERROR, {407: 1.0}, latency_scale=0.3, bytes_in_median=250),
        _profile(
            Outcome.TLS_ERROR,
            {None: 1.0},
            latency_scale=0.5,
            bytes_in_median=0,
            sends_request=False,
        ),
        _profile(Outcome.RATE_LIMITED, {429: 1.0}, latency_scale=0.6, bytes_in_median=350),
        _profile(
            Outcome.NO_PROXY_AVAILABLE,
            {None: 1.0},
            latency_scale=0.002,
            bytes_in_median=0,
            sends_request=False,
            has_proxy=False,
        ),
        _profile(Outcome.CANCELLED, {None: 1.0}, latency_scale=0.5, bytes_in_median=0),
        _profile(
            Outcome.INTERNAL,
            {None: 1.0},
            latency_scale=0.01,
            bytes_in_median=0,
            sends_request=False,
        ),
    )
}

DEFAULT_ERROR_MIX: dict[Outcome, float] = {
    Outcome.HTTP_ERROR: 0.40,
    Outcome.TIMEOUT: 0.18,
    Outcome.CONNECTION_ERROR: 0.15,
    Outcome.RATE_LIMITED: 0.10,
    Outcome.PROXY_ERROR: 0.07,
    Outcome.PROXY_AUTH_ERROR: 0.05,
    Outcome.TLS_ERROR: 0.05,
}
"""Which errors a healthy fleet sees, relative weights (normalised when compiled)."""


@dataclass(frozen=True, slots=True)
class ErrorMode:
    """An error probability with the mix of error outcomes it produces."""

    probability: float
    cumulative: tuple[float, ...]
    """Cumulative weights of ``profiles``, ending at 1.0."""
    profiles: tuple[OutcomeProfile, ...]

    def profile_at(self, u: float) -> OutcomeProfile:
        """The error profile for a uniform draw ``u`` in [0, 1)."""
        return self.profiles[bisect.bisect_right(self.cumulative, u)]


def compile_error_mode(probability: float, mix: Mapping[Outcome, float]) -> ErrorMode:
    """Build an :class:`ErrorMode`; ``mix`` holds positive weights of error outcomes only."""
    items = [(o, w) for o, w in mix.items() if w > 0]
    if not items:
        raise ValueError("an error mix needs at least one outcome with a positive weight")
    if any(o is Outcome.SUCCESS for o, _ in items):
        raise ValueError("an error mix cannot contain 'success'")
    total = sum(w for _, w in items)
    cumulative = [x / total for x in itertools.accumulate(w for _, w in items)]
    cumulative[-1] = 1.0
    return ErrorMode(
        probability=probability,
        cumulative=tuple(cumulative),
        profiles=tuple(PROFILES[o] for o, _ in items),
    )
