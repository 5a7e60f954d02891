"""Kafka transport: batch envelopes to ``<prefix>.requests``, keyed by pool, with an outage spool.

Import this module only where Kafka is used: it needs aiokafka (imported when a transport is
built), the core producer does not.

Delivery. ``send()`` (called on the producer's flush thread) never waits for the network: it
hands the envelope to a private asyncio loop on the transport's own daemon thread, which sends
it with ``acks=all`` and counts it as sent only when the broker acknowledges it. Envelope bytes
awaiting acknowledgement are bounded by ``max_in_flight_bytes``.

Outages. While the broker is unreachable (at start-up too), when a send fails retriably, or when
the in-flight bound is reached, envelopes go to a local :class:`producer.spool.Spool` (SQLite,
WAL, crash-safe, bounded; beyond the bound the oldest are dropped and counted). Every envelope
carries a sequence number taken when it was handed over, and the spool replays in that order
once the broker is back and nothing is in flight; new envelopes keep going to the spool until
it is empty, so a pool's envelopes reach its partition in hand-over order. A replayed envelope
whose acknowledgement was lost may be sent twice (at-least-once); its ``batch_id`` is unchanged.
Poison failures (message too large, not authorised, ...) are dropped and counted, never retried.

Compression: zstd by default, chosen by measurement (docs/benchmarks.md, "Producer
compression"). lz4, zstd and snappy need the ``cramjam`` package (aiokafka's extras).

Metrics (counters, spool and in-flight gauges, a send-latency histogram) are registered on the
caller's ``CollectorRegistry`` or a private one (see :mod:`producer.kafka_metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from producer.errors import (
    ProducerError,
    SpoolError,
    TransportError,
    TransportRejected,
    TransportUnavailable,
)
from producer.kafka_client import is_retriable, new_aiokafka_producer
from producer.kafka_metrics import (
    TRANSPORT_COUNTERS,
    KafkaTransportCollector,
    KafkaTransportStats,
    send_latency_histogram,
)
from producer.kafka_settings import KafkaTransportSettings
from producer.ratelimit import LogGate
from producer.spool import Spool, SpoolEntry

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped, unused-ignore]

__all__ = ["KafkaTransport", "KafkaTransportSettings", "KafkaTransportStats"]

logger = logging.getLogger(__name__)

_LOG_INTERVAL_S = 30.0


@dataclass(slots=True)
class _InFlight:
    pool: str
    payload: bytes
    event_count: int
    started: float


class KafkaTransport:
    """A :class:`producer.Transport` that ships envelopes to Kafka and spools during outages."""

    def __init__(
        self, settings: KafkaTransportSettings, *, registry: CollectorRegistry | None = None
    ) -> None:
        from aiokafka import codec  # type: ignore[import-untyped, unused-ignore]

        needs_cramjam = settings.compression in ("lz4", "zstd", "snappy")
        if needs_cramjam and not codec.has_zstd():
            raise ProducerError(
                f"compression {settings.compression!r} needs the cramjam package "
                "(pip install 'aiokafka[zstd]')"
            )
        self._settings = settings
        self._topic = settings.topic
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
        self._in_flight: dict[int, _InFlight] = {}
        self._in_flight_bytes = 0
        self._connected = False
        self._closing = False
        self._counts: dict[str, int] = dict.fromkeys(TRANSPORT_COUNTERS, 0)

        self.registry = registry if registry is not None else CollectorRegistry()
        self._latency = send_latency_histogram(self.registry)
        self.registry.register(KafkaTransportCollector(self.stats))

        self._producer: AIOKafkaProducer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="pwm-producer-kafka", daemon=True
        )
        self._thread.start()
        self._call(self._setup()).result(timeout=30)

    # ------------------------------------------------------------------ flush-thread side

    def send(self, pool: str, payload: bytes, event_count: int) -> None:
        """Hand one envelope over; returns at once (see the module docstring)."""
        size = len(payload)
        with self._lock:
            if self._closing:
                raise TransportRejected("Kafka transport is closed")
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
                self._in_flight[seq] = _InFlight(pool, payload, event_count, time.monotonic())
                self._in_flight_bytes += size
                # Scheduled under the lock, so deliveries start in sequence order.
                self._loop.call_soon_threadsafe(self._start_delivery, seq)
        if live:
            return
        try:
            self._to_spool(seq, pool, payload, event_count)
        except SpoolError as exc:
            with self._lock:
                self._counts["accepted_batches"] -= 1
                self._counts["accepted_events"] -= event_count
            raise TransportUnavailable(f"broker unavailable and spool failed: {exc}") from exc
        self._loop.call_soon_threadsafe(self._replay_wake.set)

    def close(self, timeout_s: float | None = None) -> None:
        """Wait (bounded) for in-flight envelopes, spool what is left, stop. Idempotent."""
        timeout = self._settings.close_timeout_s if timeout_s is None else timeout_s
        with self._lock:
            if self._closing:
                return
            self._closing = True
        try:
            self._call(self._shutdown(timeout)).result(timeout=timeout + 10.0)
        except Exception:
            logger.exception("Kafka transport did not shut down cleanly")
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10.0)
        if not self._thread.is_alive():
            self._loop.close()
        self._spool.close()

    def stats(self) -> KafkaTransportStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return KafkaTransportStats(
                **self._counts,
                dropped_spool_full_batches=self._spool.dropped_rows,
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
            self._counts["spooled_events"] += event_count

    def _call(self, coro: Any) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    # ------------------------------------------------------------------ loop side

    async def _setup(self) -> None:
        self._replay_wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._spool_empty = asyncio.Event()
        self._stop = asyncio.Event()
        self._append_lock = asyncio.Lock()
        self._replayer = asyncio.create_task(self._replay_loop(), name="pwm-kafka-replay")

    async def _ensure_producer(self) -> AIOKafkaProducer | None:
        if self._producer is not None:
            return self._producer
        producer = new_aiokafka_producer(self._settings)
        try:
            await producer.start()
        except Exception as exc:
            with contextlib.suppress(Exception):
                await producer.stop()
            if self._log.admit("connect") is not None:
                logger.warning(
                    "Kafka %s unreachable, spooling envelopes: %s",
                    self._settings.bootstrap_servers,
                    exc,
                )
            return None
        self._producer = producer
        logger.info("Kafka producer connected to %s", self._settings.bootstrap_servers)
        return producer

    def _in_flight_drained(self) -> bool:
        """``True`` if nothing is in flight; otherwise arm ``_drained`` (set by the last
        delivery to finish) before returning ``False``."""
        self._drained.clear()
        with self._lock:
            if not self._in_flight:
                self._drained.set()
                return True
        return False

    def _start_delivery(self, seq: int) -> None:
        task = asyncio.create_task(self._deliver(seq))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, seq: int) -> None:
        item = self._in_flight[seq]
        producer = self._producer
        try:
            if producer is None:
                raise TransportUnavailable("no Kafka producer")
            # aiokafka's send() first waits for topic metadata and for room in the partition's
            # batch; a later caller arriving once those are ready would be appended before
            # earlier ones still waking up. Appending one at a time (the lock is FIFO) keeps
            # a pool's envelopes in hand-over order; acknowledgements are awaited concurrently.
            async with self._append_lock:
                ack = await producer.send(self._topic, value=item.payload, key=item.pool.encode())
            await ack
        except BaseException as exc:
            self._delivery_failed(seq, item, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        else:
            self._latency.observe(time.monotonic() - item.started)
            with self._lock:
                self._counts["sent_batches"] += 1
                self._counts["sent_events"] += item.event_count
        finally:
            with self._lock:
                if self._in_flight.pop(seq, None) is not None:
                    self._in_flight_bytes -= len(item.payload)
                drained = not self._in_flight
            if drained:
                self._drained.set()

    def _delivery_failed(self, seq: int, item: _InFlight, exc: BaseException) -> None:
        if (isinstance(exc, TransportError) and exc.retriable) or is_retriable(exc):
            with self._lock:
                self._counts["send_errors_retriable"] += 1
                self._connected = False
            try:
                self._to_spool(seq, item.pool, item.payload, item.event_count)
            except SpoolError:
                logger.exception(
                    "cannot spool a failed envelope (%d events lost)", item.event_count
                )
                with self._lock:
                    self._counts["dropped_closed_events"] += item.event_count
            self._replay_wake.set()
            if self._log.admit("send-retriable") is not None:
                logger.warning("Kafka send failed, spooling and replaying later: %r", exc)
            return
        with self._lock:
            self._counts["send_errors_poison"] += 1
            self._counts["dropped_rejected_batches"] += 1
            self._counts["dropped_rejected_events"] += item.event_count
        if self._log.admit("send-poison") is not None:
            logger.error(
                "Kafka refused an envelope of pool %s (%d events dropped): %r",
                item.pool,
                item.event_count,
                exc,
            )

    async def _replay_loop(self) -> None:
        backoff_s = self._settings.reconnect_initial_ms / 1000.0
        while not self._stop.is_set():
            producer = await self._ensure_producer()
            healthy = producer is not None
            if producer is not None and self._spool.rows:
                if not self._in_flight_drained():
                    await self._drained.wait()
                    continue
                healthy = await self._replay_some(producer)
            if healthy and self._spool.rows == 0:
                with self._lock:
                    if self._spool.rows == 0:
                        self._connected = True
                self._spool_empty.set()
                backoff_s = self._settings.reconnect_initial_ms / 1000.0
                self._replay_wake.clear()
                await self._replay_wake.wait()
                continue
            self._spool_empty.clear()
            if healthy:
                backoff_s = self._settings.reconnect_initial_ms / 1000.0
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), backoff_s)
            backoff_s = min(backoff_s * 2, self._settings.reconnect_max_ms / 1000.0)

    async def _replay_some(self, producer: AIOKafkaProducer) -> bool:
        """Send the oldest spooled envelopes; ``False`` after a retriable failure."""
        entries = await asyncio.to_thread(self._spool.peek, self._settings.replay_batch_envelopes)
        started = time.monotonic()
        acks: list[asyncio.Future[Any] | BaseException] = []
        async with self._append_lock:
            for entry in entries:
                try:
                    acks.append(
                        await producer.send(self._topic, entry.payload, key=entry.pool.encode())
                    )
                except Exception as exc:
                    acks.append(exc)
                    break
        results: list[BaseException | None] = []
        for ack in acks:  # all are sent already: awaiting in turn costs no concurrency
            error: BaseException | None = ack if isinstance(ack, BaseException) else None
            if error is None:
                try:
                    await ack  # type: ignore[misc]
                except Exception as exc:
                    error = exc
            results.append(error)
        return await self._settle_replay(entries[: len(results)], results, started)

    async def _settle_replay(
        self, entries: list[SpoolEntry], results: list[BaseException | None], started: float
    ) -> bool:
        done: list[int] = []
        healthy = True
        elapsed = time.monotonic() - started
        for entry, error in zip(entries, results, strict=True):
            if error is None:
                done.append(entry.seq)
                self._latency.observe(elapsed)
                with self._lock:
                    self._counts["sent_batches"] += 1
                    self._counts["sent_events"] += entry.event_count
                    self._counts["replayed_batches"] += 1
                    self._counts["replayed_events"] += entry.event_count
            elif is_retriable(error):
                healthy = False
                with self._lock:
                    self._counts["send_errors_retriable"] += 1
            else:
                done.append(entry.seq)
                with self._lock:
                    self._counts["send_errors_poison"] += 1
                    self._counts["dropped_rejected_batches"] += 1
                    self._counts["dropped_rejected_events"] += entry.event_count
                logger.error(
                    "Kafka refused a spooled envelope of pool %s (%d events dropped): %r",
                    entry.pool,
                    entry.event_count,
                    error,
                )
        await asyncio.to_thread(self._spool.remove, done)
        if not healthy and self._log.admit("replay") is not None:
            logger.warning("Kafka replay interrupted, %d envelopes still spooled", self._spool.rows)
        return healthy

    async def _shutdown(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s

        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        if not self._in_flight_drained():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), left())
        if self._producer is not None and self._spool.rows:
            self._replay_wake.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._spool_empty.wait(), left())
        self._stop.set()
        self._replay_wake.set()
        self._replayer.cancel()
        for task in list(self._tasks):
            task.cancel()  # their failure handlers spool what is still unacknowledged
        await asyncio.gather(self._replayer, *self._tasks, return_exceptions=True)
        if self._producer is not None:
            try:
                await asyncio.wait_for(self._producer.stop(), max(left(), 1.0))
            except Exception as exc:
                logger.warning("Kafka producer did not stop cleanly: %r", exc)
        if not self._durable and self._spool.rows:
            lost = self._spool.events
            with self._lock:
                self._counts["dropped_closed_events"] += lost
            logger.warning(
                "Kafka transport closed with %d events in its memory-only spool (dropped)", lost
            )
