"""A rotation strategy wrapper that tells the instrumentation which proxy a request got.

ProxyWhirl returns a plain ``httpx.Response`` that does not say which proxy served it. Its
rotation strategy is the one public seam that sees the choice: the rotator asks it to
``select`` a proxy for every request. :class:`ObservedStrategy` wraps the user's strategy
(installed with ``set_strategy()``), delegates every call and attribute to it unchanged, and
records the selected proxy into the :class:`~producer.integrations.httpx_observer.RequestObserver`
of the request in progress, found in a context variable (per thread, and per asyncio task).

It reports the wrapped strategy's class as its own ``__class__``, so code that inspects
``rotator.strategy`` (``isinstance``, ``__class__.__name__`` in ProxyWhirl's logs, API and MCP
server) sees the user's strategy.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from producer.integrations.httpx_observer import RequestObserver

__all__ = ["CURRENT_REQUEST", "ObservedStrategy"]

CURRENT_REQUEST: ContextVar[RequestObserver | None] = ContextVar(
    "proxywhirl_metrics_request", default=None
)
"""The observer of the instrumented request running in this thread or task, if any."""


class ObservedStrategy:
    """Delegates to ``inner``; records each selected proxy into the current request's record."""

    __slots__ = ("_inner", "record_result")

    def __init__(self, inner: Any) -> None:
        object.__setattr__(self, "_inner", inner)
        record_result = getattr(inner, "record_result", None)
        if record_result is not None:
            # The inner strategy's own bound method, called by ProxyWhirl after every request
            # without a delegating frame in between (there is nothing to observe there).
            object.__setattr__(self, "record_result", record_result)

    @property
    def inner(self) -> Any:
        """The user's strategy."""
        return self._inner

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return type(self._inner)

    def select(self, *args: Any, **kwargs: Any) -> Any:
        proxy = self._inner.select(*args, **kwargs)
        record = CURRENT_REQUEST.get()
        if record is not None:
            record.proxy = proxy
        return proxy

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._inner, name, value)

    def __repr__(self) -> str:
        return f"ObservedStrategy({self._inner!r})"
