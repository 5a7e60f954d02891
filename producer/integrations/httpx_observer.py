"""Observe every attempt of one logical request through httpx's ``auth=`` argument.

ProxyWhirl passes extra keyword arguments through to ``httpx.Client.request`` on every attempt,
so an :class:`ObservingAuth` given as ``auth=`` sees each attempt start, each request it sends
and each response it receives, for the sync and the async client alike. It wraps the user's
own ``auth=`` (a tuple, a callable or an ``httpx.Auth``, converted the way httpx does) and
delegates the whole flow to it unchanged; without one it applies, like httpx, Basic auth from
credentials in the request URL.

The observation itself cannot fail the request: a :class:`RequestRecord` only sets attributes,
and what could raise (reading a body size, a header) is guarded.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

import httpx

__all__ = ["ObservingAuth", "RequestRecord", "build_user_auth"]


class RequestRecord:
    """What one logical request did: the proxy chosen, attempts sent, responses received."""

    __slots__ = ("attempts", "bytes_out", "proxy", "proxy_status_error", "responses", "status")

    def __init__(self) -> None:
        self.proxy: Any = None
        self.attempts = 0
        self.status: int | None = None
        self.proxy_status_error = False
        self.responses: list[httpx.Response] = []
        self.bytes_out = 0

    def begin_attempt(self) -> None:
        """A new attempt starts: it has received no response yet."""
        self.attempts += 1
        self.status = None
        self.proxy_status_error = False

    def on_request(self, request: httpx.Request) -> None:
        try:
            self.bytes_out += len(request.content)
        except httpx.RequestNotRead:  # a streamed body: trust its declared length, if any
            length = request.headers.get("content-length", "")
            if length.isdigit():
                self.bytes_out += int(length)

    def on_response(self, response: httpx.Response) -> None:
        status = response.status_code
        self.status = status
        self.responses.append(response)
        if status >= 500:
            # RFC 9209: a proxy that generated the error itself says so in Proxy-Status.
            value = response.headers.get("proxy-status")
            self.proxy_status_error = value is not None and "error=" in value.lower()

    def bytes_in(self) -> int:
        """Response body bytes downloaded over all attempts (as sent, before decoding)."""
        responses = self.responses
        if len(responses) == 1:
            return responses[0].num_bytes_downloaded
        return sum(response.num_bytes_downloaded for response in responses)


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


class ObservingAuth(httpx.Auth):
    """An ``httpx.Auth`` that records into a :class:`RequestRecord` and delegates to ``inner``."""

    def __init__(self, inner: httpx.Auth | None, record: RequestRecord) -> None:
        self._inner = inner
        self._record = record

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        record = self._record
        record.begin_attempt()
        inner = self._inner if self._inner is not None else _url_auth(request)
        if inner is None:
            record.on_request(request)
            response = yield request
            record.on_response(response)
            return
        flow = inner.sync_auth_flow(request)
        try:
            next_request = next(flow)
            while True:
                record.on_request(next_request)
                response = yield next_request
                record.on_response(response)
                try:
                    next_request = flow.send(response)
                except StopIteration:
                    return
        finally:
            flow.close()

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        record = self._record
        record.begin_attempt()
        inner = self._inner if self._inner is not None else _url_auth(request)
        if inner is None:
            record.on_request(request)
            response = yield request
            record.on_response(response)
            return
        flow = inner.async_auth_flow(request)
        try:
            next_request = await flow.__anext__()
            while True:
                record.on_request(next_request)
                response = yield next_request
                record.on_response(response)
                try:
                    next_request = await flow.asend(response)
                except StopAsyncIteration:
                    return
        finally:
            await flow.aclose()
