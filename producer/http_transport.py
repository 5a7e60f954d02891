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

The loop thread, in-flight bookkeeping, spool, counters and bounded close are
:class:`producer.spooled.SpooledTransport`'s; this module supplies the posting, the answers'
classification and the paced replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cramjam
import httpx

from producer.errors import SpoolError
from producer.http_settings import HttpTransportSettings
from producer.spooled import InFlight, SpooledTransport

__all__ = ["HttpTransport", "HttpTransportSettings", "HttpTransportStats"]

logger = logging.getLogger(__name__)

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


class HttpTransport(SpooledTransport[HttpTransportStats]):
    """A :class:`producer.Transport` that posts envelopes to ``serve`` and spools during outages."""

    def __init__(self, settings: HttpTransportSettings) -> None:
        super().__init__(
            settings,
            name="HTTP",
            peer="server",
            counters=_COUNTERS,
            stats_type=HttpTransportStats,
            log=logger,
        )
        self._connected = self._spool.rows == 0
        self._settings = settings
        self._not_before = 0.0  # monotonic time before which nothing is posted again (loop side)
        self._headers = {"content-type": "application/json"}
        if settings.token is not None:
            self._headers["authorization"] = f"Bearer {settings.token.get_secret_value()}"
        self._start_loop()

    # ------------------------------------------------------------------ loop side

    async def _setup_loop(self) -> None:
        s = self._settings
        self._client = httpx.AsyncClient(
            timeout=s.timeout_s,
            limits=httpx.Limits(
                max_connections=s.max_connections, max_keepalive_connections=s.max_connections
            ),
        )

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
        if answer.ok:
            self._count(
                refused_events=answer.refused,
                sent_batches=1,
                sent_events=event_count - answer.refused,
                duplicate_batches=answer.duplicate,
                replayed_batches=replayed,
            )
            return
        self._count(
            refused_events=answer.refused,
            send_errors_poison=1,
            dropped_rejected_batches=1,
            dropped_rejected_events=event_count,
        )
        if self._log.admit("poison") is not None:
            logger.error(
                "the server refused an envelope of pool %s (%d events dropped): %s",
                pool,
                event_count,
                answer.reason,
            )

    async def _deliver_one(self, seq: int, item: InFlight) -> None:
        answer = _Answer(ok=False, retriable=True, reason="cancelled")
        try:
            answer = await self._post(item.payload)
        finally:
            if answer.retriable:
                self._spool_retriable(seq, item)
                initial_s = self._settings.retry_initial_ms / 1000.0
                self._defer(max(answer.retry_after_s, initial_s * (0.5 + 0.5 * random.random())))
                if self._log.admit("retriable") is not None:
                    logger.warning(
                        "posting to %s failed, spooling: %s", self._settings.url, answer.reason
                    )
            else:
                self._settle(item.pool, item.event_count, answer, replayed=False)

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
                self._connect_if_spool_empty()
                backoff_s = s.retry_initial_ms / 1000.0
                await self._idle()
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
                self._count(send_errors_retriable=1)
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

    async def _finish_spool(self, left: Callable[[], float]) -> None:
        while self._spool.rows and left() > 0:
            if not await self._replay_some():
                break

    async def _disconnect(self, left: Callable[[], float]) -> None:
        await self._client.aclose()


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
