"""HTTP transport: batch envelopes to a ``serve`` process (``POST /api/v1/ingest``), with the
same outage spool as the Kafka transport.

Delivery. ``send()`` (called on the producer's flush thread) never waits for the network: it
hands the envelope to a private asyncio loop on the transport's own daemon thread, which posts it
over a keep-alive connection pool (httpx; ``max_connections`` requests at once), compressed with
zstd or gzip when it is larger than ``compress_min_bytes``, with the ingest token. An envelope
counts as sent when the server answers 200 (``duplicate`` answers included: the server had it
already). Envelope bytes awaiting an answer are bounded by ``max_in_flight_bytes``.

Outages. While the server is unreachable, answers 429/503/5xx, or times out, envelopes go to a
local :class:`producer.spool.Spool` (SQLite, WAL, crash-safe, bounded: beyond the bound the
oldest are dropped and counted); new envelopes follow them into the spool until it is empty.
The spool is replayed with exponential back-off and jitter between failed rounds, never
sooner than the server's ``Retry-After``. An envelope whose answer was lost is posted again with
the same ``batch_id``: the server recognises it, so nothing is counted twice.
Poison answers (400, 401, 403, 404, 413, 415, 422) drop the envelope and count it, never retried;
events the server refused one by one (200 with ``refused``) are counted in ``refused_events``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import random
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import cramjam
import httpx

from producer.errors import SpoolError, TransportRejected, TransportUnavailable
from producer.http_settings import HttpTransportSettings
from producer.ratelimit import LogGate
from producer.spool import Spool

__all__ = ["HttpTransport", "HttpTransportSettings", "HttpTransportStats"]

logger = logging.getLogger(__name__)

_LOG_INTERVAL_S = 30.0
_RETRIABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_COUNTERS = (
    "accepted_batches",
    "accepted_events",
    "sent_batches",
    "sent_events",
    "duplicate_batches",
    "refused_events",
    "spooled_batches",
    "replayed_batches",
    "send_errors_retriable",
    "send_errors_poison",
    "dropped_rejected_batches",
    "dropped_rejected_events",
    "dropped_closed_events",
)


@dataclass(frozen=True, slots=True)
class HttpTransportStats:
    """A snapshot of the transport's counters and gauges."""

    accepted_batches: int
    accepted_events: int
    sent_batches: int
    sent_events: int
    duplicate_batches: int
    refused_events: int
    spooled_batches: int
    replayed_batches: int
    send_errors_retriable: int
    send_errors_poison: int
    dropped_rejected_batches: int
    dropped_rejected_events: int
    dropped_closed_events: int
    dropped_spool_full_events: int
    connected: bool
    in_flight_bytes: int
    spool_rows: int
    spool_events: int


@dataclass(frozen=True, slots=True)
class _Answer:
    ok: bool
    retriable: bool
    retry_after_s: float = 0.0
    duplicate: bool = False
    refused: int = 0
    reason: str = ""


class HttpTransport:
    """A :class:`producer.Transport` that posts envelopes to ``serve`` and spools during outages."""

    def __init__(self, settings: HttpTransportSettings) -> None:
        self._settings = settings
        self._spool = Spool(
            settings.spool_path if settings.spool_path is not None else ":memory:",
            max_bytes=settings.spool_max_bytes,
            max_rows=settings.spool_max_rows,
            synchronous=settings.spool_synchronous,
        )
        self._durable = settings.spool_path is not None
        self._log = LogGate(_LOG_INTERVAL_S)
        self._lock = threading.Lock()
        self._seq = self._spool.last_seq
        self._in_flight: dict[int, tuple[str, bytes, int]] = {}
        self._in_flight_bytes = 0
        self._connected = self._spool.rows == 0
        self._closing = False
        self._not_before = 0.0  # monotonic time before which nothing is posted again (loop side)
        self._counts: dict[str, int] = dict.fromkeys(_COUNTERS, 0)
        self._headers = {"content-type": "application/json"}
        if settings.token is not None:
            self._headers["authorization"] = f"Bearer {settings.token.get_secret_value()}"
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="pwm-producer-http", daemon=True
        )
        self._thread.start()
        self._call(self._setup()).result(timeout=30)

    # ------------------------------------------------------------------ flush-thread side

    def send(self, pool: str, payload: bytes, event_count: int) -> None:
        """Hand one envelope over; returns at once (see the module docstring)."""
        size = len(payload)
        with self._lock:
            if self._closing:
                raise TransportRejected("HTTP transport is closed")
            self._seq += 1
            seq = self._seq
            self._counts["accepted_batches"] += 1
            self._counts["accepted_events"] += event_count
            live = (
                self._connected
                and self._spool.rows == 0
                and self._in_flight_bytes + size <= self._settings.max_in_flight_bytes
            )
            if live:
                self._in_flight[seq] = (pool, payload, event_count)
                self._in_flight_bytes += size
                self._loop.call_soon_threadsafe(self._start_delivery, seq)
        if live:
            return
        try:
            self._to_spool(seq, pool, payload, event_count)
        except SpoolError as exc:
            with self._lock:
                self._counts["accepted_batches"] -= 1
                self._counts["accepted_events"] -= event_count
            raise TransportUnavailable(f"server unavailable and spool failed: {exc}") from exc
        self._loop.call_soon_threadsafe(self._replay_wake.set)

    def close(self, timeout_s: float | None = None) -> None:
        """Wait (bounded) for answers, replay what the spool holds, stop. Idempotent."""
        timeout = self._settings.close_timeout_s if timeout_s is None else timeout_s
        with self._lock:
            if self._closing:
                return
            self._closing = True
        try:
            self._call(self._shutdown(timeout)).result(timeout=timeout + 10.0)
        except Exception:
            logger.exception("HTTP transport did not shut down cleanly")
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10.0)
        if not self._thread.is_alive():
            self._loop.close()
        self._spool.close()

    def stats(self) -> HttpTransportStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return HttpTransportStats(
                **self._counts,
                dropped_spool_full_events=self._spool.dropped_events,
                connected=self._connected,
                in_flight_bytes=self._in_flight_bytes,
                spool_rows=self._spool.rows,
                spool_events=self._spool.events,
            )

    def _to_spool(self, seq: int, pool: str, payload: bytes, event_count: int) -> None:
        if not self._spool.append(seq, pool, payload, event_count):
            return  # larger than the whole spool: counted by the spool as dropped
        with self._lock:
            self._counts["spooled_batches"] += 1

    def _call(self, coro: Any) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    # ------------------------------------------------------------------ loop side

    async def _setup(self) -> None:
        s = self._settings
        self._client = httpx.AsyncClient(
            timeout=s.timeout_s,
            limits=httpx.Limits(
                max_connections=s.max_connections, max_keepalive_connections=s.max_connections
            ),
        )
        self._replay_wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._replayer = asyncio.create_task(self._replay_loop(), name="pwm-http-replay")

    def _encode(self, payload: bytes) -> tuple[bytes, dict[str, str]]:
        s = self._settings
        if s.compression == "none" or len(payload) < s.compress_min_bytes:
            return payload, self._headers
        if s.compression == "zstd":
            body = bytes(cramjam.zstd.compress(payload))
        else:
            body = gzip.compress(payload, compresslevel=5)
        return body, {**self._headers, "content-encoding": s.compression}

    async def _post(self, payload: bytes) -> _Answer:
        body, headers = self._encode(payload)
        try:
            response = await self._client.post(
                self._settings.ingest_url, content=body, headers=headers
            )
        except httpx.HTTPError as exc:  # connect, read, timeout, protocol
            return _Answer(ok=False, retriable=True, reason=f"{type(exc).__name__}: {exc}")
        status = response.status_code
        if status == 200:
            doc = _json(response)
            refused = doc.get("refused")
            return _Answer(
                ok=True,
                retriable=False,
                duplicate=bool(doc.get("duplicate")),
                refused=len(refused) if isinstance(refused, list) else 0,
            )
        reason = f"HTTP {status}: {str(_json(response).get('detail', ''))[:200]}"
        if status in _RETRIABLE_STATUS:
            return _Answer(
                ok=False, retriable=True, retry_after_s=_retry_after(response), reason=reason
            )
        refused = _json(response).get("refused")
        return _Answer(
            ok=False,
            retriable=False,
            refused=len(refused) if isinstance(refused, list) else 0,
            reason=reason,
        )

    def _settle(self, pool: str, event_count: int, answer: _Answer, *, replayed: bool) -> None:
        """Count an answer that ends an envelope's journey (sent or poison)."""
        with self._lock:
            c = self._counts
            c["refused_events"] += answer.refused
            if answer.ok:
                c["sent_batches"] += 1
                c["sent_events"] += event_count - answer.refused
                c["duplicate_batches"] += answer.duplicate
                c["replayed_batches"] += replayed
                return
            c["send_errors_poison"] += 1
            c["dropped_rejected_batches"] += 1
            c["dropped_rejected_events"] += event_count
        if self._log.admit("poison") is not None:
            logger.error(
                "the server refused an envelope of pool %s (%d events dropped): %s",
                pool,
                event_count,
                answer.reason,
            )

    def _start_delivery(self, seq: int) -> None:
        self._drained.clear()
        task = asyncio.create_task(self._deliver(seq))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, seq: int) -> None:
        pool, payload, event_count = self._in_flight[seq]
        answer = _Answer(ok=False, retriable=True, reason="cancelled")
        try:
            answer = await self._post(payload)
        finally:
            if answer.retriable:
                self._retriable(seq, pool, payload, event_count, answer)
            else:
                self._settle(pool, event_count, answer, replayed=False)
            with self._lock:
                if self._in_flight.pop(seq, None) is not None:
                    self._in_flight_bytes -= len(payload)
                drained = not self._in_flight
            if drained:
                self._drained.set()

    def _retriable(self, seq: int, pool: str, payload: bytes, count: int, answer: _Answer) -> None:
        with self._lock:
            self._counts["send_errors_retriable"] += 1
            self._connected = False
        try:
            self._to_spool(seq, pool, payload, count)
        except SpoolError:
            logger.exception("cannot spool a failed envelope (%d events lost)", count)
            with self._lock:
                self._counts["dropped_closed_events"] += count
        initial_s = self._settings.retry_initial_ms / 1000.0
        self._defer(max(answer.retry_after_s, initial_s * (0.5 + 0.5 * random.random())))
        self._replay_wake.set()
        if self._log.admit("retriable") is not None:
            logger.warning("posting to %s failed, spooling: %s", self._settings.url, answer.reason)

    def _defer(self, delay_s: float) -> None:
        self._not_before = max(self._not_before, time.monotonic() + delay_s)

    async def _replay_loop(self) -> None:
        s = self._settings
        backoff_s = s.retry_initial_ms / 1000.0
        while not self._stop.is_set():
            wait_s = self._not_before - time.monotonic()
            if wait_s > 0:  # the server's Retry-After, or the back-off after a failure
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), wait_s)
                continue
            healthy = True
            if self._spool.rows:
                healthy = await self._replay_some()
            if healthy and self._spool.rows == 0:
                with self._lock:
                    if self._spool.rows == 0:
                        self._connected = True
                backoff_s = s.retry_initial_ms / 1000.0
                self._replay_wake.clear()
                await self._replay_wake.wait()
                continue
            if healthy:
                continue
            self._defer(backoff_s * (0.5 + 0.5 * random.random()))  # jittered: half to all of it
            backoff_s = min(backoff_s * 2, s.retry_max_ms / 1000.0)

    async def _replay_some(self) -> bool:
        """Post the oldest spooled envelopes at once; ``False`` after a retriable failure."""
        try:
            entries = await asyncio.to_thread(
                self._spool.peek, self._settings.replay_batch_envelopes
            )
        except SpoolError:
            logger.exception("cannot read the spool")
            return False
        answers = await asyncio.gather(*(self._post(e.payload) for e in entries))
        done: list[int] = []
        healthy = True
        for entry, answer in zip(entries, answers, strict=True):
            if answer.retriable:
                healthy = False
                self._defer(answer.retry_after_s)
                with self._lock:
                    self._counts["send_errors_retriable"] += 1
                continue
            done.append(entry.seq)
            self._settle(entry.pool, entry.event_count, answer, replayed=True)
        try:
            await asyncio.to_thread(self._spool.remove, done)
        except SpoolError:  # replayed again later: the server answers them as duplicates
            logger.exception("cannot remove replayed envelopes from the spool")
        if not healthy and self._log.admit("replay") is not None:
            logger.warning(
                "replay to %s interrupted, %d envelopes spooled",
                self._settings.url,
                self._spool.rows,
            )
        return healthy

    async def _shutdown(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s

        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained.wait(), left())
        while self._spool.rows and left() > 0:
            if not await self._replay_some():
                break
        self._stop.set()
        self._replay_wake.set()
        self._replayer.cancel()
        for task in list(self._tasks):
            task.cancel()  # their handlers spool what is still unanswered
        await asyncio.gather(self._replayer, *self._tasks, return_exceptions=True)
        await self._client.aclose()
        if not self._durable and self._spool.rows:
            lost = self._spool.events
            with self._lock:
                self._counts["dropped_closed_events"] += lost
            logger.warning(
                "HTTP transport closed with %d events in its memory-only spool (dropped)", lost
            )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        doc = response.json()
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("retry-after", "")
    try:
        return min(max(float(value), 0.0), 300.0)
    except ValueError:
        return 0.0
