"""Instrument a ProxyWhirl rotator in one line: one ``RequestEvent`` per request.

>>> from producer.integrations.proxywhirl import instrument
>>> handle = instrument(rotator, producer, pool="eu-residential")   # ProxyWhirl or AsyncProxyWhirl
>>> rotator.get("https://example.com/")                              # unchanged user code
>>> handle.uninstrument()                                            # optional

Written against proxywhirl 0.3.3 (extra ``proxywhirl-metrics[proxywhirl]``), which has no
per-request hook and returns a plain ``httpx.Response`` that does not say which proxy served it.
The integration uses three public seams and changes nothing else:

* the instance's request methods (``get``, ``post``, ``put``, ``delete``, ``patch``, ``head``,
  ``options``) are shadowed by instance attributes that time the whole call (retries and
  back-off included: the latency the caller saw; ProxyWhirl's async path records 0), and emit
  exactly one event when it returns or raises, then return or re-raise exactly what ProxyWhirl
  did;
* an ``auth=`` wrapper (:mod:`~producer.integrations.httpx_observer`) passed through to httpx
  observes every attempt: how many were sent, the status of the last response, bytes sent and
  received. A user's own ``auth=`` keeps working: it is wrapped, not replaced. Every other
  keyword argument passes through untouched;
* the rotation strategy is wrapped (``set_strategy()``;
  :mod:`~producer.integrations.proxywhirl_strategy`) to learn the proxy each request got. If
  the user later installs another strategy, the next request wraps that one.

The wrappers live in :mod:`~producer.integrations.proxywhirl_instrumentation`; the outcome is
decided by :mod:`~producer.integrations.proxywhirl_outcomes` (documented table), labels by
:mod:`~producer.integrations.proxywhirl_labels`. No proxy address, port, credential,
URL path or query is put into an event: the proxy is an HMAC of its address under the fleet
key, the target at most its domain (``include_domain``, off by default).

A failure inside the instrumentation never reaches the request: it is counted
(:meth:`Instrumentation.stats`) and logged at most once per ``error_log_interval_s`` per stage,
naming the stage and exception type only. ``instrument()`` raises the configuration errors of
:mod:`producer.integrations.errors`.
"""

from __future__ import annotations

import logging
from typing import Any

from producer.integrations.errors import (
    AlreadyInstrumented,
    IntegrationUnavailable,
    NotInstrumentable,
)

try:
    from proxywhirl import AsyncProxyWhirl, ProxyWhirl
except ImportError as exc:  # pragma: no cover - exercised only without the extra installed
    raise IntegrationUnavailable(
        "proxywhirl is not installed: pip install 'proxywhirl-metrics[proxywhirl]'"
    ) from exc

from producer.integrations.proxywhirl_instrumentation import (
    METHOD_NAMES,
    REGISTRY,
    REGISTRY_LOCK,
    EventEmitter,
    Instrumentation,
    InstrumentationStats,
)
from producer.integrations.proxywhirl_settings import ProxyWhirlSettings

__all__ = [
    "METHOD_NAMES",
    "EventEmitter",
    "Instrumentation",
    "InstrumentationStats",
    "ProxyWhirlSettings",
    "get_instrumentation",
    "instrument",
]

logger = logging.getLogger(__name__)


def get_instrumentation(rotator: Any) -> Instrumentation | None:
    """The active instrumentation of ``rotator``, if any."""
    with REGISTRY_LOCK:
        return REGISTRY.get(rotator)


def instrument(
    rotator: Any,
    producer: EventEmitter,
    settings: ProxyWhirlSettings | None = None,
    *,
    pool: str | None = None,
    region: str | None = None,
    include_domain: bool | None = None,
) -> Instrumentation:
    """Emit one event per request made through ``rotator`` (a ``ProxyWhirl`` or
    ``AsyncProxyWhirl``), through ``producer``; returns the handle.

    ``pool`` / ``region`` are the defaults for proxies without a pool tag / region (see
    :mod:`~producer.integrations.proxywhirl_labels`); ``include_domain`` sends the target's
    domain. Keyword arguments override ``settings`` (itself defaulting to
    ``ProxyWhirlSettings()``, i.e. the ``PWM_PROXYWHIRL_*`` environment).

    Raises :class:`~producer.integrations.errors.NotInstrumentable`,
    :class:`~producer.integrations.errors.AlreadyInstrumented`, or ``ValueError`` for invalid
    settings.
    """
    if isinstance(rotator, AsyncProxyWhirl):
        is_async = True
    elif isinstance(rotator, ProxyWhirl):
        is_async = False
    else:
        raise NotInstrumentable(
            f"expected a proxywhirl.ProxyWhirl or AsyncProxyWhirl, got {type(rotator).__name__}"
        )
    overrides: dict[str, Any] = {
        key: value
        for key, value in (("pool", pool), ("region", region), ("include_domain", include_domain))
        if value is not None
    }
    if settings is None:
        settings = ProxyWhirlSettings(**overrides)
    elif overrides:
        settings = ProxyWhirlSettings(**{**settings.model_dump(), **overrides})
    with REGISTRY_LOCK:
        existing = REGISTRY.get(rotator)
        if existing is not None and existing.active:
            raise AlreadyInstrumented(
                "this rotator is instrumented already; call uninstrument() on its handle first"
            )
        handle = Instrumentation(rotator, producer, settings, is_async=is_async)
        handle.install()
        REGISTRY[rotator] = handle
    logger.debug(
        "instrumented a %s rotator (pool %s, region %s)",
        "async" if is_async else "sync",
        settings.pool,
        settings.region,
    )
    return handle
