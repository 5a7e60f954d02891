"""A local target server and local HTTP forward proxies on loopback, for real end-to-end tests.

Everything runs on one asyncio loop in a background thread, so synchronous clients (which block
their own thread) and asynchronous clients (on pytest's loop) can both use it.

* the target server (:mod:`tests.support.target_server`) answers ``/ok``, ``/404``, ``/500``,
  ``/503``, ``/slow?ms=N`` and more, and records every request.
* :class:`ForwardProxy` is an HTTP/1.1 forward proxy: absolute-URI requests (``GET http://...``)
  are relayed upstream with a ``Via`` header, ``CONNECT host:port`` opens a tunnel. It can
  require Basic credentials (``407`` otherwise) and add a fixed delay before relaying. When the
  upstream cannot be reached it answers ``502`` with an RFC 9209 ``Proxy-Status`` header.
* :class:`ProxyLab` starts a target and the four proxies the ProxyWhirl tests need: ``healthy``
  (accepts its credentials), ``auth`` (requires credentials the rotator does not have: 407),
  ``slow`` (adds ``slow_delay_ms``) and ``dead`` (a closed port); with ``tls_directory`` also
  an HTTPS target with a self-signed certificate (made with the ``openssl`` CLI).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import sys
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from tests.support.target_server import (
    MAX_HEAD_BYTES,
    OK_BODY,
    REQUEST_ID_HEADER,
    HttpParseError,
    Message,
    TargetServer,
    TcpServer,
    encode_response,
    free_port,
    make_self_signed_certificate,
    read_message,
    server_tls_context,
)

__all__ = [
    "OK_BODY",
    "REQUEST_ID_HEADER",
    "ForwardProxy",
    "LabProxy",
    "LoopThread",
    "ProxyHit",
    "ProxyLab",
    "TargetServer",
    "describe",
    "make_self_signed_certificate",
]

T = TypeVar("T")

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


@dataclass(frozen=True)
class ProxyHit:
    """One request a forward proxy received (after its own authentication check)."""

    proxy: str
    method: str
    target: str
    request_id: str | None
    status: int


class ForwardProxy(TcpServer):
    """An HTTP/1.1 forward proxy (absolute-URI requests and CONNECT tunnels)."""

    def __init__(
        self, name: str, *, credentials: tuple[str, str] | None = None, delay_ms: int = 0
    ) -> None:
        super().__init__()
        self.name = name
        self.delay_ms = delay_ms
        self.hits: list[ProxyHit] = []
        self._lock = threading.Lock()
        self._expected_auth: str | None = None
        if credentials is not None:
            token = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode())
            self._expected_auth = "Basic " + token.decode()

    def snapshot(self) -> list[ProxyHit]:
        with self._lock:
            return list(self.hits)

    def _record(self, method: str, target: str, request: Message, status: int) -> None:
        with self._lock:
            self.hits.append(
                ProxyHit(self.name, method, target, request.header(REQUEST_ID_HEADER), status)
            )

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await read_message(reader)
            if request is None:
                return
            method, target, _version = request.start_line.split(" ", 2)
            if self._expected_auth is not None and (
                request.header("proxy-authorization") != self._expected_auth
            ):
                self._record(method, target, request, 407)
                writer.write(
                    encode_response(407, b"", [("Proxy-Authenticate", 'Basic realm="lab"')])
                )
                await writer.drain()
                continue
            if self.delay_ms:
                await asyncio.sleep(self.delay_ms / 1000)
            if method == "CONNECT":
                await self._tunnel(target, request, reader, writer)
                return
            await self._forward(method, target, request, writer)

    async def _forward(
        self, method: str, target: str, request: Message, writer: asyncio.StreamWriter
    ) -> None:
        parts = urlsplit(target)
        host, port = parts.hostname or "", parts.port or 80
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port, limit=MAX_HEAD_BYTES)
        except OSError:
            self._record(method, target, request, 502)
            writer.write(
                encode_response(
                    502, b"", [("Proxy-Status", f"{self.name}; error=connection_refused")]
                )
            )
            await writer.drain()
            return
        try:
            headers = [(k, v) for k, v in request.headers if k.lower() not in _HOP_BY_HOP]
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            head = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers)]
            head += [f"Via: 1.1 {self.name}", "Connection: close"]
            head.append(f"Content-Length: {len(request.body)}")
            up_writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + request.body)
            await up_writer.drain()
            response = await read_message(up_reader, is_response=True)
        finally:
            up_writer.close()
            with contextlib.suppress(Exception):
                await up_writer.wait_closed()
        if response is None:
            raise HttpParseError("upstream closed without a response")
        status = int(response.start_line.split(" ", 2)[1])
        self._record(method, target, request, status)
        relay = [(k, v) for k, v in response.headers if k.lower() not in _HOP_BY_HOP]
        relay = [(k, v) for k, v in relay if k.lower() != "content-length"]
        relay.append(("Via", f"1.1 {self.name}"))
        writer.write(encode_response(status, response.body, relay))
        await writer.drain()

    async def _tunnel(
        self,
        target: str,
        request: Message,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        host, _, port_text = target.rpartition(":")
        try:
            up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port_text))
        except OSError:
            self._record("CONNECT", target, request, 502)
            writer.write(encode_response(502, b""))
            await writer.drain()
            return
        self._record("CONNECT", target, request, 200)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            finally:
                with contextlib.suppress(Exception):
                    dst.close()

        await asyncio.gather(
            pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True
        )


class LoopThread:
    """An asyncio loop running in a daemon thread; ``run`` executes a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="proxy-lab", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5.0)
        self.loop.close()


@dataclass(frozen=True)
class LabProxy:
    """How a test reaches one lab proxy: its name, URL (no credentials) and credentials."""

    name: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class ProxyLab:
    """The target server plus the ``healthy``, ``auth``, ``slow`` and ``dead`` proxies."""

    HEALTHY_CREDENTIALS = ("lab-alice", "s3cret-Alice-pw")
    AUTH_REQUIRED_CREDENTIALS = ("lab-bob", "s3cret-Bob-pw")
    AUTH_WRONG_PASSWORD = "wrong-Bob-pw"

    def __init__(self, *, slow_delay_ms: int = 150, tls_directory: Path | None = None) -> None:
        self._loop = LoopThread()
        self.target = TargetServer()
        self.tls_target: TargetServer | None = None
        if tls_directory is not None:
            cert = make_self_signed_certificate(tls_directory)
            self.tls_target = TargetServer(server_tls_context(cert))
        self.healthy = ForwardProxy(name="healthy", credentials=self.HEALTHY_CREDENTIALS)
        self.auth = ForwardProxy(name="auth", credentials=self.AUTH_REQUIRED_CREDENTIALS)
        self.slow = ForwardProxy(name="slow", delay_ms=slow_delay_ms)
        self._servers: list[TcpServer] = [self.target, self.healthy, self.auth, self.slow]
        if self.tls_target is not None:
            self._servers.append(self.tls_target)
        self.dead_port = 0

    def start(self) -> ProxyLab:
        for server in self._servers:
            self._loop.run(server.start())
        self.dead_port = free_port()
        return self

    def stop(self) -> None:
        for server in self._servers:
            self._loop.run(server.stop())
        self._loop.stop()

    def __enter__(self) -> ProxyLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def target_url(self, path: str, *, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.target.port}{path}"

    def tls_target_url(self, path: str) -> str:
        """An https URL of the TLS target (``localhost``, the certificate's name)."""
        assert self.tls_target is not None, "start the lab with tls_directory="
        return f"https://localhost:{self.tls_target.port}{path}"

    def lab_proxies(self) -> dict[str, LabProxy]:
        """The four proxies with the credentials a rotator should be given for each."""
        alice, alice_pw = self.HEALTHY_CREDENTIALS
        bob = self.AUTH_REQUIRED_CREDENTIALS[0]
        return {
            "healthy": LabProxy("healthy", "127.0.0.1", self.healthy.port, alice, alice_pw),
            "auth": LabProxy("auth", "127.0.0.1", self.auth.port, bob, self.AUTH_WRONG_PASSWORD),
            "slow": LabProxy("slow", "127.0.0.1", self.slow.port),
            "dead": LabProxy("dead", "127.0.0.1", self.dead_port),
        }

    def proxy_hits(self) -> list[ProxyHit]:
        return self.healthy.snapshot() + self.auth.snapshot() + self.slow.snapshot()

    def clear(self) -> None:
        """Forget recorded hits (between tests sharing one lab)."""
        for server in (self.healthy, self.auth, self.slow):
            with server._lock:
                server.hits.clear()
        with self.target._lock:
            self.target.hits.clear()
            self.target.received.clear()


def describe(lab: ProxyLab) -> dict[str, Any]:
    """Ports and credentials of a running lab, as JSON-ready data."""
    return {
        "target_port": lab.target.port,
        "proxies": {
            name: {
                "host": p.host,
                "port": p.port,
                "username": p.username,
                "password": p.password,
            }
            for name, p in lab.lab_proxies().items()
        },
    }


def main() -> None:
    """``python -m tests.support.proxies``: run a lab in its own process (for benchmarks).

    Prints :func:`describe` as one JSON line, then serves until its stdin is closed.
    """
    parser = argparse.ArgumentParser(description="Run the loopback proxy lab")
    parser.add_argument("--slow-delay-ms", type=int, default=150)
    args = parser.parse_args()
    with ProxyLab(slow_delay_ms=args.slow_delay_ms) as lab:
        print(json.dumps(describe(lab)), flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
