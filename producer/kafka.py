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

The loop thread, in-flight bookkeeping, spool, counters and bounded close are
:class:`producer.spooled.SpooledTransport`'s; this module supplies the Kafka delivery, the
ordered replay and the error classification (:func:`producer.kafka_client.is_retriable`).

Metrics (counters, spool and in-flight gauges, a send-latency histogram) are registered on the
caller's ``CollectorRegistry`` or a private one (see :mod:`producer.kafka_metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from producer.errors import ProducerError, TransportError, TransportUnavailable
from producer.kafka_client import is_retriable, new_aiokafka_producer
from producer.kafka_metrics import (
    TRANSPORT_COUNTERS,
    KafkaTransportCollector,
    KafkaTransportStats,
    send_latency_histogram,
)
from producer.kafka_settings import KafkaTransportSettings
from producer.spool import SpoolEntry
from producer.spooled import InFlight, SpooledTransport

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped, unused-ignore]

__all__ = ["KafkaTransport", "KafkaTransportSettings", "KafkaTransportStats"]

logger = logging.getLogger(__name__)


class KafkaTransport(SpooledTransport[KafkaTransportStats]):
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
        super().__init__(
            settings,
            name="Kafka",
            peer="broker",
            counters=TRANSPORT_COUNTERS,
            stats_type=KafkaTransportStats,
            log=logger,
        )
        self._settings = settings
        self._topic = settings.topic

        self.registry = registry if registry is not None else CollectorRegistry()
        self._latency = send_latency_histogram(self.registry)
        self.registry.register(KafkaTransportCollector(self.stats))

        self._producer: AIOKafkaProducer | None = None
        self._start_loop()

    def _extra_stats(self) -> dict[str, int]:
        return {"dropped_spool_full_batches": self._spool.dropped_rows}

    # ------------------------------------------------------------------ loop side

    async def _setup_loop(self) -> None:
        self._spool_empty = asyncio.Event()
        self._append_lock = asyncio.Lock()

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

    async def _deliver_one(self, seq: int, item: InFlight) -> None:
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
            self._count(sent_batches=1, sent_events=item.event_count)

    def _delivery_failed(self, seq: int, item: InFlight, exc: BaseException) -> None:
        if (isinstance(exc, TransportError) and exc.retriable) or is_retriable(exc):
            self._spool_retriable(seq, item)
            if self._log.admit("send-retriable") is not None:
                logger.warning("Kafka send failed, spooling and replaying later: %r", exc)
            return
        self._count_poison(item.event_count)
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
                self._connect_if_spool_empty()
                self._spool_empty.set()
                backoff_s = self._settings.reconnect_initial_ms / 1000.0
                await self._idle()
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
            n = entry.event_count
            if error is None:
                done.append(entry.seq)
                self._latency.observe(elapsed)
                self._count(sent_batches=1, sent_events=n, replayed_batches=1, replayed_events=n)
            elif is_retriable(error):
                healthy = False
                self._count(send_errors_retriable=1)
            else:
                done.append(entry.seq)
                self._count_poison(n)
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

    async def _finish_spool(self, left: Callable[[], float]) -> None:
        if self._producer is not None and self._spool.rows:
            self._replay_wake.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._spool_empty.wait(), left())

    async def _disconnect(self, left: Callable[[], float]) -> None:
        if self._producer is not None:
            try:
                await asyncio.wait_for(self._producer.stop(), max(left(), 1.0))
            except Exception as exc:
                logger.warning("Kafka producer did not stop cleanly: %r", exc)
