"""Observe every attempt of one logical request through httpx's ``auth=`` argument.

ProxyWhirl passes extra keyword arguments through to ``httpx.Client.request`` on every attempt,
so a :class:`RequestObserver` given as ``auth=`` sees each attempt start, each request it sends
and each response it receives, for the sync and the async client alike. It wraps the user's
own ``auth=`` (a tuple, a callable or an ``httpx.Auth``, converted the way httpx does) and
delegates the whole flow to it unchanged; without one it applies, like httpx, Basic auth from
credentials in the request URL.

One observer is created per logical request and is also that request's record (the proxy the
strategy chose is written into it). It is on the request path, so it is one plain object
with few calls; what could raise (reading a body size) is guarded, so observing cannot fail the
request.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

import httpx

__all__ = ["RequestObserver", "build_user_auth"]


def build_user_auth(auth: Any) -> httpx.Auth | None:
    """The ``httpx.Auth`` httpx itself would build from a user's ``auth=`` value.

    Raises ``TypeError`` for a value httpx would refuse too (the caller then leaves the
    argument alone, so the user gets httpx's own error).
    """
    if auth is None or auth is httpx.USE_CLIENT_DEFAULT:
        return None
    if isinstance(auth, httpx.Auth):
        return auth
    if isinstance(auth, tuple) and len(auth) == 2:
        return httpx.BasicAuth(auth[0], auth[1])
    if callable(auth):
        return _CallableAuth(auth)
    raise TypeError("unsupported auth value")


class _CallableAuth(httpx.Auth):
    """A plain callable used as ``auth=``: it takes the request and returns it (as httpx)."""

    def __init__(self, func: Callable[[httpx.Request], httpx.Request]) -> None:
        self._func = func

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        yield self._func(request)


def _url_auth(request: httpx.Request) -> httpx.Auth | None:
    if not request.url.userinfo:
        return None
    username, password = request.url.username, request.url.password
    if username or password:
        return httpx.BasicAuth(username, password)
    return None


class RequestObserver(httpx.Auth):
    """An ``httpx.Auth`` that records what one logical request did, delegating to ``inner``.

    ``proxy`` is set by the strategy wrapper; ``attempts`` counts auth flows started (one per
    ProxyWhirl attempt); ``status``/``proxy_status_error`` describe the response the current
    attempt received (reset when an attempt starts); ``bytes_out`` sums request bodies sent.
    """

    # Class-level defaults: a request that is never retried writes only what changes.
    proxy: Any = None
    attempts = 0
    status: int | None = None
    proxy_status_error = False
    bytes_out = 0
    _last_response: httpx.Response | None = None
    _earlier_bytes_in = 0
    _inner: httpx.Auth | None = None
    _url_auth = False

    @classmethod
    def create(cls, inner: httpx.Auth | None, url_may_have_credentials: bool) -> RequestObserver:
        """The observer of one request; ``inner`` is the user's auth (see
        :func:`build_user_auth`), ``url_may_have_credentials`` says whether httpx may have to
        apply Basic auth from the URL itself. Only what differs from the class defaults is set
        (this runs for every request)."""
        observer = cls()
        if inner is not None:
            observer._inner = inner
        elif url_may_have_credentials:
            observer._url_auth = True
        return observer

    def _begin_attempt(self) -> None:
        self.attempts += 1
        self.status = None
        self.proxy_status_error = False

    def _on_request(self, request: httpx.Request) -> None:
        try:
            self.bytes_out += len(request.content)
        except httpx.RequestNotRead:
            self._on_streamed_request(request)

    def _on_streamed_request(self, request: httpx.Request) -> None:
        """A streamed body: trust its declared length, if any."""
        length = request.headers.get("content-length", "")
        if length.isdigit():
            self.bytes_out += int(length)

    def _on_response(self, response: httpx.Response) -> None:
        status = response.status_code
        self.status = status
        previous = self._last_response
        if previous is not None:  # its body was read before this one was requested
            self._earlier_bytes_in += previous.num_bytes_downloaded
        self._last_response = response
        if status >= 500:
            # RFC 9209: a proxy that generated the error itself says so in Proxy-Status.
            value = response.headers.get("proxy-status")
            self.proxy_status_error = value is not None and "error=" in value.lower()

    def bytes_in(self) -> int:
        """Response body bytes downloaded over all attempts (as sent, before decoding)."""
        last = self._last_response
        if last is None:
            return self._earlier_bytes_in
        return self._earlier_bytes_in + last.num_bytes_downloaded

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        inner = self._inner if not self._url_auth else _url_auth(request)
        if inner is None and not self.attempts:
            # The common case (first attempt, no auth of the user's), kept flat: it runs inside
            # every request, so the class defaults stand for the reset of _begin_attempt.
            self.attempts = 1
            try:
                self.bytes_out = len(request.content)
            except httpx.RequestNotRead:
                self._on_streamed_request(request)
            response = yield request
            if self._last_response is None and response.status_code < 500:
                self.status = response.status_code
                self._last_response = response
            else:
                self._on_response(response)
            return
        self._begin_attempt()
        if inner is None:
            self._on_request(request)
            response = yield request
            self._on_response(response)
            return
        flow = inner.sync_auth_flow(request)
        try:
            next_request = next(flow)
            while True:
                self._on_request(next_request)
                response = yield next_request
                self._on_response(response)
                try:
                    next_request = flow.send(response)
                except StopIteration:
                    return
        finally:
            flow.close()

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        self._begin_attempt()
        inner = self._inner if not self._url_auth else _url_auth(request)
        if inner is None:
            self._on_request(request)
            response = yield request
            self._on_response(response)
            return
        flow = inner.async_auth_flow(request)
        try:
            next_request = await flow.__anext__()
            while True:
                self._on_request(next_request)
                response = yield next_request
                self._on_response(response)
                try:
                    next_request = await flow.asend(response)
                except StopAsyncIteration:
                    return
        finally:
            await flow.aclose()
