"""The loopback HTTP pieces of the test lab: message parsing, the target server, TLS helpers.

:class:`TargetServer` answers ``/ok``, ``/404``, ``/500``, ``/503``, ``/429``, ``/401``,
``/slow?ms=N``, ``/bytes?n=N`` and ``/needs-token`` (401 unless ``Authorization: Bearer
good-token``); any path below ``/ok/`` (with any query) answers 200 too, so privacy tests can
send secret-looking paths and queries. Every request is recorded (:class:`TargetHit`). With an
``ssl_context`` it speaks HTTPS; :func:`make_self_signed_certificate` makes one with the
``openssl`` CLI. The forward proxies and the lab are in :mod:`tests.support.proxies`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

REQUEST_ID_HEADER = "x-test-req"
MAX_HEAD_BYTES = 64 * 1024
OK_BODY = b"ok from the local target\n"

_REASONS = {
    200: "OK",
    401: "Unauthorized",
    404: "Not Found",
    407: "Proxy Authentication Required",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class HttpParseError(Exception):
    """The peer sent something that is not a well-formed HTTP/1.1 message head."""


@dataclass(frozen=True)
class Message:
    """One parsed HTTP/1.1 request or response (body already read)."""

    start_line: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None


async def read_message(
    reader: asyncio.StreamReader, *, is_response: bool = False
) -> Message | None:
    """Read one message; ``None`` on a clean end of stream before any byte of it."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise HttpParseError("truncated message head") from exc
    except asyncio.LimitOverrunError as exc:
        raise HttpParseError("message head too large") from exc
    lines = head.decode("latin-1").split("\r\n")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise HttpParseError("malformed header line")
        headers.append((name.strip(), value.strip()))
    message = Message(lines[0], headers, b"")
    length_text = message.header("content-length")
    if length_text is not None:
        body = await reader.readexactly(int(length_text))
    elif (message.header("transfer-encoding") or "").lower() == "chunked":
        body = await _read_chunked(reader)
    elif is_response:
        body = await reader.read()
    else:
        body = b""
    return Message(message.start_line, headers, body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


def encode_response(
    status: int, body: bytes = b"", headers: list[tuple[str, str]] | None = None
) -> bytes:
    reason = _REASONS.get(status, "Status")
    lines = [f"HTTP/1.1 {status} {reason}"]
    for name, value in headers or []:
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def free_port() -> int:
    """A loopback port that nothing listens on right now (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_self_signed_certificate(directory: Path, common_name: str = "localhost") -> Path:
    """Write ``cert.pem`` and ``key.pem`` for ``common_name`` into ``directory`` (openssl CLI);
    returns the certificate's path. No client trusts it: verification must fail."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={common_name}",
            "-addext",
            f"subjectAltName=DNS:{common_name}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert


def server_tls_context(cert: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, cert.with_name("key.pem"))
    return context


class TcpServer:
    """Base: an asyncio server on 127.0.0.1 whose connection tasks are cancelled on stop."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl = ssl_context
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._on_connection, "127.0.0.1", 0, limit=MAX_HEAD_BYTES, ssl=self._ssl
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self.serve(reader, writer)
        except (ConnectionError, HttpParseError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            pass  # stop(): end quietly (asyncio's stream callback would report a cancelled task)
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class TargetHit:
    """One request the target server received."""

    method: str
    path: str
    query: str
    request_id: str | None
    via: str | None
    authorization: str | None
    body_len: int
    status: int


class TargetServer(TcpServer):
    """The origin server behind the proxies (see the module docstring for its routes); with
    an ``ssl_context`` it speaks HTTPS (reached through a proxy's CONNECT tunnel)."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(ssl_context)
        self.hits: list[TargetHit] = []
        self.received: list[str] = []
        """Request targets (path and query) as they arrive, before any answer."""
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await read_message(reader)
            if request is None:
                return
            method, target, _version = request.start_line.split(" ", 2)
            parts = urlsplit(target)
            with self._lock:
                self.received.append(target)
                self._arrived.notify_all()
            status, body = await self._route(parts.path, parse_qs(parts.query), request)
            with self._lock:
                self.hits.append(
                    TargetHit(
                        method=method,
                        path=parts.path,
                        query=parts.query,
                        request_id=request.header(REQUEST_ID_HEADER),
                        via=request.header("via"),
                        authorization=request.header("authorization"),
                        body_len=len(request.body),
                        status=status,
                    )
                )
            if method == "HEAD":
                body = b""
            writer.write(encode_response(status, body, [("Content-Type", "text/plain")]))
            await writer.drain()
            if (request.header("connection") or "").lower() == "close":
                return

    async def _route(
        self, path: str, query: dict[str, list[str]], request: Message
    ) -> tuple[int, bytes]:
        if path == "/ok" or path.startswith("/ok/"):
            return 200, OK_BODY
        if path == "/needs-token":
            if request.header("authorization") == "Bearer good-token":
                return 200, OK_BODY
            return 401, b"token required"

        if path in ("/404", "/500", "/503", "/429", "/401"):
            return int(path[1:]), b"status " + path[1:].encode()
        if path == "/slow":
            await asyncio.sleep(int(query.get("ms", ["1000"])[0]) / 1000)
            return 200, OK_BODY
        if path == "/bytes":
            return 200, b"x" * int(query.get("n", ["0"])[0])
        return 404, b"no such route"

    def snapshot(self) -> list[TargetHit]:
        with self._lock:
            return list(self.hits)

    def last_hit(self, path: str) -> TargetHit:
        """The latest request for ``path``. Not simply the latest request: a slow request an
        earlier test gave up on is recorded when the server finishes it, possibly later."""
        with self._lock:
            for hit in reversed(self.hits):
                if hit.path == path:
                    return hit
        raise AssertionError(f"the target received no request for {path}")

    def received_targets(self) -> list[str]:
        with self._lock:
            return list(self.received)

    def wait_received(self, target: str, timeout_s: float) -> None:
        """Block until a request for ``target`` (path and query) has arrived."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: target in self.received, timeout_s):
                raise TimeoutError(f"no request for {target} within {timeout_s} s")
