"""The handle of one instrumented ProxyWhirl rotator: request wrappers and event emission.

See :mod:`producer.integrations.proxywhirl` for what is instrumented and why. Each wrapped call
creates a :class:`~producer.integrations.httpx_observer.RequestObserver` (passed as ``auth=``
and put in the context variable the strategy wrapper writes the proxy into), calls ProxyWhirl's
own method, then decides the outcome and labels and makes one ``emit()``. The common request is
handled inline by the wrapper and :meth:`Instrumentation._settle`; any other by ``_begin``,
``_finish`` and ``_record``, which decide the same event. None of them raises: their failures
are counted and logged (rate-limited, type only).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import weakref
from collections.abc import Callable
from contextvars import Token
from typing import Any

import httpx

from producer.integrations.httpx_observer import RequestObserver, build_user_auth
from producer.integrations.proxywhirl_interface import EventEmitter, InstrumentationStats
from producer.integrations.proxywhirl_labels import ProxyLabeler, TargetDomains
from producer.integrations.proxywhirl_outcomes import classify
from producer.integrations.proxywhirl_settings import ProxyWhirlSettings
from producer.integrations.proxywhirl_strategy import CURRENT_REQUEST, ObservedStrategy
from producer.ratelimit import LogGate
from schemas.events import Outcome

__all__ = [
    "METHOD_NAMES",
    "REGISTRY",
    "REGISTRY_LOCK",
    "EventEmitter",
    "Instrumentation",
    "InstrumentationStats",
]

logger = logging.getLogger(__name__)

METHOD_NAMES = ("get", "post", "put", "delete", "patch", "head", "options")
"""The request methods of ``ProxyWhirl`` and ``AsyncProxyWhirl`` that are instrumented."""


_Begun = tuple[RequestObserver, Token[RequestObserver | None], int]
_SUCCESS = Outcome.SUCCESS

REGISTRY: weakref.WeakKeyDictionary[Any, Instrumentation] = weakref.WeakKeyDictionary()
REGISTRY_LOCK = threading.Lock()


class Instrumentation:
    """The handle of one instrumented rotator; :meth:`uninstrument` restores it."""

    def __init__(
        self, rotator: Any, producer: EventEmitter, settings: ProxyWhirlSettings, *, is_async: bool
    ) -> None:
        self._rotator = rotator
        self._producer = producer
        # The common request's event: its arguments are valid by construction (labels checked
        # by the labeler, ids from proxy_id()), so the producer's checks can wait for its flush
        # thread where it offers that (MetricsProducer.emit_deferred).
        self._emit_common: Callable[..., bool] = getattr(producer, "emit_deferred", producer.emit)
        self.settings = settings
        self.is_async = is_async
        self._labeler = ProxyLabeler(settings, producer.proxy_id)
        self._include_domain = settings.include_domain
        self._domains = TargetDomains()
        self._lock = threading.Lock()
        self._active = False
        self._strategy: ObservedStrategy | None = None
        self._wrappers: dict[str, Callable[..., Any]] = {}
        self._shadowed: dict[str, Any] = {}
        self._refused = 0
        self._unknown_proxy = 0
        self._internal_errors = 0
        self._log_gate = LogGate(settings.error_log_interval_s)

    @property
    def active(self) -> bool:
        """``True`` until :meth:`uninstrument` is called."""
        return self._active

    def stats(self) -> InstrumentationStats:
        with self._lock:
            return InstrumentationStats(
                refused=self._refused,
                unknown_proxy=self._unknown_proxy,
                internal_errors=self._internal_errors,
                invalid_labels=self._labeler.invalid_labels,
                invalid_addresses=self._labeler.invalid_addresses,
            )

    # ------------------------------------------------------------------ install / remove

    def install(self) -> None:
        """Wrap the strategy and the request methods (called once, by ``instrument()``)."""
        rotator = self._rotator
        self._install_strategy()
        try:
            for name in METHOD_NAMES:
                original = getattr(rotator, name)
                if name in vars(rotator):
                    self._shadowed[name] = original
                wrapper = (
                    self._async_wrapper(original) if self.is_async else self._wrapper(original)
                )
                setattr(rotator, name, wrapper)
                self._wrappers[name] = wrapper
        except BaseException:
            self._restore()
            raise
        self._active = True

    def uninstrument(self) -> None:
        """Restore the rotator's methods and strategy; later requests emit nothing.

        Safe to call more than once. A strategy the user installed after ``instrument()`` is
        left in place (unwrapped)."""
        with self._lock:
            if not self._active:
                return
            self._active = False
        self._restore()
        with REGISTRY_LOCK:
            if REGISTRY.get(self._rotator) is self:
                del REGISTRY[self._rotator]

    def _restore(self) -> None:
        rotator = self._rotator
        for name, wrapper in self._wrappers.items():
            if vars(rotator).get(name) is wrapper:
                if name in self._shadowed:
                    setattr(rotator, name, self._shadowed[name])
                else:
                    delattr(rotator, name)
        self._wrappers.clear()
        strategy = rotator.strategy
        if type(strategy) is ObservedStrategy and strategy is self._strategy:
            rotator.set_strategy(strategy.inner)
        self._strategy = None

    def _install_strategy(self) -> None:
        with self._lock:
            current = self._rotator.strategy
            if type(current) is ObservedStrategy:
                self._strategy = current
                return
            wrapper = ObservedStrategy(current)
            self._rotator.set_strategy(wrapper)
            self._strategy = wrapper

    # ------------------------------------------------------------------ request path

    # The common request (instrumented, no ``auth=`` of the user's, a URL without credentials,
    # one attempt answered with 100-399 by a proxy the strategy wrapper saw) is prepared in the
    # wrapper's own frame and settled by _settle: in situ, after ProxyWhirl's and httpx's work has
    # pushed ours out of the CPU caches, each further frame, call and object touched costs more
    # than its instructions (benchmarks/proxywhirl_overhead.py, "cold" block). Any other request
    # takes _begin, _finish and _record, which decide the same event
    # (tests/integration_proxywhirl/test_fast_path.py holds the two paths equal).

    def _wrapper(self, original: Callable[..., Any]) -> Callable[..., Any]:
        handle, begin, finish, settle = self, self._begin, self._finish, self._settle
        internal_error = self._internal_error
        new_observer, set_request, clock = (
            RequestObserver,
            CURRENT_REQUEST.set,
            time.perf_counter_ns,
        )

        @functools.wraps(original)
        def instrumented(url: Any, *args: Any, **kwargs: Any) -> Any:
            begun: _Begun | None
            try:
                if (
                    handle._active
                    and "auth" not in kwargs
                    and type(url) is str
                    and "@" not in url
                    and handle._rotator.strategy is handle._strategy
                ):
                    observer = new_observer()  # the class defaults fit this request
                    begun = (observer, set_request(observer), clock())
                    kwargs["auth"] = observer
                else:
                    begun = begin(url, kwargs)
            except Exception as exc:
                internal_error("begin", exc)
                begun = None
            if begun is None:
                return original(url, *args, **kwargs)
            try:
                response = original(url, *args, **kwargs)
            except BaseException as exc:
                finish(begun, url, None, exc)
                raise
            settle(begun, url, response)
            return response

        return instrumented

    def _async_wrapper(self, original: Callable[..., Any]) -> Callable[..., Any]:
        handle, begin, finish, settle = self, self._begin, self._finish, self._settle
        internal_error = self._internal_error
        new_observer, set_request, clock = (
            RequestObserver,
            CURRENT_REQUEST.set,
            time.perf_counter_ns,
        )

        @functools.wraps(original)
        async def instrumented(url: Any, *args: Any, **kwargs: Any) -> Any:
            begun: _Begun | None
            try:
                if (
                    handle._active
                    and "auth" not in kwargs
                    and type(url) is str
                    and "@" not in url
                    and handle._rotator.strategy is handle._strategy
                ):
                    observer = new_observer()
                    begun = (observer, set_request(observer), clock())
                    kwargs["auth"] = observer
                else:
                    begun = begin(url, kwargs)
            except Exception as exc:
                internal_error("begin", exc)
                begun = None
            if begun is None:
                return await original(url, *args, **kwargs)
            try:
                response = await original(url, *args, **kwargs)
            except BaseException as exc:
                finish(begun, url, None, exc)
                raise
            settle(begun, url, response)
            return response

        return instrumented

    def _begin(self, url: Any, kwargs: dict[str, Any]) -> _Begun | None:
        """Prepare one request: ``kwargs`` (the wrapper's own dict) gets the observer as
        ``auth=``. ``None`` (call ProxyWhirl untouched) when inactive or failing."""
        if not self._active:
            return None
        try:
            if self._rotator.strategy is not self._strategy:
                self._install_strategy()
            user_auth = kwargs.get("auth")
            if user_auth is None and type(url) is str and "@" not in url:
                observer = RequestObserver()  # the common case: the class defaults fit
                kwargs["auth"] = observer
            else:
                observer = self._observer_for(url, user_auth, kwargs)
            token = CURRENT_REQUEST.set(observer)
        except Exception as exc:
            self._internal_error("begin", exc)
            return None
        return observer, token, time.perf_counter_ns()

    @staticmethod
    def _observer_for(url: Any, user_auth: Any, kwargs: dict[str, Any]) -> RequestObserver:
        """The observer of a request with an ``auth=`` of the user's or a URL that may carry
        credentials; it replaces ``auth=`` unless httpx would refuse the user's value."""
        try:
            inner = None if user_auth is None else build_user_auth(user_auth)
        except TypeError:  # httpx refuses this value itself: leave it for the user to see
            return RequestObserver.create(None, not isinstance(url, str) or "@" in url)
        observer = RequestObserver.create(inner, not isinstance(url, str) or "@" in url)
        kwargs["auth"] = observer
        return observer

    def _settle(self, begun: _Begun, url: Any, response: httpx.Response) -> None:
        """Emit the event of a request that returned ``response``: the common request (one
        attempt, status 100-399, proxy known) here, any other through :meth:`_record`.
        Never raises."""
        end_ns = time.perf_counter_ns()
        observer, token, start_ns = begun
        try:  # noqa: SIM105 - no context manager on the request path
            CURRENT_REQUEST.reset(token)
        except ValueError:
            pass  # a coroutine closed by the GC finishes in another context: nothing to undo
        try:
            status = response.status_code
            proxy = observer.proxy
            if observer.attempts != 1 or proxy is None or not 100 <= status < 400:
                self._record(observer, end_ns - start_ns, url, response, None)
                return
            pool, region, proxy_id = self._labeler.labels(proxy)
            if not self._emit_common(
                pool,
                region,
                proxy_id,
                _SUCCESS,
                (end_ns - start_ns) / 1e6,
                status,
                response.num_bytes_downloaded,
                observer.bytes_out,
                1,
                self._domains(url) if self._include_domain else None,
            ):
                with self._lock:
                    self._refused += 1
        except Exception as exc:
            self._internal_error("finish", exc)

    def _finish(
        self,
        begun: _Begun,
        url: Any,
        response: httpx.Response | None,
        error: BaseException | None,
    ) -> None:
        """Emit the request's event (any outcome). Never raises."""
        end_ns = time.perf_counter_ns()
        observer, token, start_ns = begun
        try:  # noqa: SIM105 - no context manager on the request path
            CURRENT_REQUEST.reset(token)
        except ValueError:
            pass  # a coroutine closed by the GC finishes in another context: nothing to undo
        self._record(observer, end_ns - start_ns, url, response, error)

    def _record(
        self,
        observer: RequestObserver,
        elapsed_ns: int,
        url: Any,
        response: httpx.Response | None,
        error: BaseException | None,
    ) -> None:
        """Decide the outcome and labels of a finished request and emit its event. Never
        raises."""
        try:
            attempts = observer.attempts
            if response is not None and error is None:
                status: int | None = response.status_code
                if status is not None and status < 400:
                    outcome = _SUCCESS
                else:
                    outcome = classify(
                        None, status=status, proxy_status_error=observer.proxy_status_error
                    )
                # One attempt: the response it saw is the one returned; no call needed.
                bytes_in = response.num_bytes_downloaded if attempts <= 1 else observer.bytes_in()
            else:
                status = observer.status
                outcome = classify(
                    error,
                    status=status,
                    proxy_status_error=observer.proxy_status_error,
                    attempts=attempts,
                )
                bytes_in = observer.bytes_in()
            proxy = observer.proxy
            if proxy is None and attempts:
                with self._lock:
                    self._unknown_proxy += 1
            pool, region, proxy_id = self._labeler.labels(proxy)
            # Positional, in EventEmitter.emit's order: keyword matching costs on every request.
            accepted = self._producer.emit(
                pool,
                region,
                proxy_id,
                outcome,
                elapsed_ns / 1e6,
                status if status is not None and 100 <= status <= 599 else None,
                bytes_in,
                observer.bytes_out,
                attempts if 1 <= attempts <= 1000 else (1 if attempts < 1 else 1000),
                self._domains(url) if self._include_domain else None,
            )
            if not accepted:
                with self._lock:
                    self._refused += 1
        except Exception as exc:
            self._internal_error("finish", exc)

    def _internal_error(self, stage: str, exc: Exception) -> None:
        try:
            with self._lock:
                self._internal_errors += 1
            suppressed = self._log_gate.admit(stage)
            if suppressed is not None:
                # The type only: messages can quote URLs or proxy addresses.
                logger.warning(
                    "ProxyWhirl instrumentation failed in %s (%s); the request was not affected "
                    "(%d similar failures since the last report)",
                    stage,
                    type(exc).__name__,
                    suppressed,
                )
        except Exception:  # noqa: S110 - the request path must never see our failures
            pass
