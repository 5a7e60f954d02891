"""The distributed HTTP ingest: a stateless ``api`` forwards validated records to the Kafka topic.

For fleet hosts that can reach the API but not Kafka. A body is validated exactly as in the
embedded ingest (:mod:`.intake`: per-event refusals, kept in ``ingest_dead_letters`` on the
ClickHouse server); the good events go to ``<prefix>.requests`` as one record keyed by pool, as
the producer's Kafka transport sends it, and the sender gets its answer only once the broker
acknowledged it (``acks=all``). Broker trouble answers 503 with ``Retry-After``.

Duplicates: each replica remembers the batch identities it forwarded recently (bounded, in
memory), so a retry to the same replica is answered as a duplicate. A retry that reaches another
replica, or one after a restart, is forwarded again: in distributed mode a batch whose answer was
lost may be counted twice (at-least-once, like the Kafka transport's own replays). The embedded
``serve`` has no such gap (:mod:`.inbox`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from typing import TYPE_CHECKING, Any

from producer.kafka_client import new_aiokafka_producer
from producer.kafka_settings import KafkaTransportSettings
from stream_app.serve.body import decode_body
from stream_app.serve.dead_letters import IngestDeadLetters
from stream_app.serve.errors import IngestUnavailable
from stream_app.serve.ingestor import IngestOutcome
from stream_app.serve.intake import read_intake
from stream_app.serve.settings import IngestSettings
from stream_app.storage.errors import StorageError

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped, unused-ignore]

__all__ = ["KafkaForwarder"]

logger = logging.getLogger(__name__)

_REMEMBERED_BATCHES = 100_000


class KafkaForwarder:
    """HTTP ingest of a stateless API: validate, keep refusals, forward to Kafka."""

    def __init__(
        self,
        settings: IngestSettings,
        kafka: KafkaTransportSettings,
        dead_letters: IngestDeadLetters | None,
    ) -> None:
        self._settings = settings
        self._kafka = kafka
        self._dead_letters = dead_letters
        self._recent: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()
        self._recent_lock = threading.Lock()
        self._producer: AIOKafkaProducer | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="pwm-ingest-kafka", daemon=True
        )
        self._thread.start()
        self._start_lock = asyncio.Lock()
        self.forwarded_events = 0

    def ingest(self, body: bytes, content_encoding: str | None) -> IngestOutcome:
        """Take one body (blocking). Raises BodyRejected or IngestUnavailable."""
        retry_s = self._settings.retry_after_s
        data = decode_body(
            body, content_encoding, max_decoded_bytes=self._settings.max_decoded_bytes
        )
        intake = read_intake(data)
        outcome = IngestOutcome(
            refused=intake.refused, batch_id=intake.batch_id, source_host=intake.source_host
        )
        if intake.refused and self._dead_letters is not None:
            try:
                self._dead_letters.keep(
                    data, intake.refused, source_host=intake.source_host, batch_id=intake.batch_id
                )
            except StorageError as exc:
                logger.warning("ingest dead letters cannot be stored: %s", exc)
                raise IngestUnavailable(
                    "refused events cannot be kept right now", retry_after_s=retry_s
                ) from exc
        if not intake.accepted:
            return outcome
        key = (intake.source_host, intake.batch_id)
        with self._recent_lock:
            if key in self._recent:
                outcome.duplicate = True
                return outcome
        future = asyncio.run_coroutine_threadsafe(
            self._send(intake.record, intake.pool), self._loop
        )
        try:
            future.result(timeout=self._kafka.request_timeout_ms / 1000 + 5)
        except Exception as exc:
            future.cancel()
            logger.warning("forwarding to Kafka %s failed: %r", self._kafka.bootstrap_servers, exc)
            raise IngestUnavailable(
                "the Kafka topic cannot take records now", retry_after_s=retry_s
            ) from exc
        with self._recent_lock:
            self._recent[key] = None
            while len(self._recent) > _REMEMBERED_BATCHES:
                self._recent.popitem(last=False)
        self.forwarded_events += intake.accepted
        outcome.accepted_events = intake.accepted
        return outcome

    async def _send(self, record: bytes, pool: str) -> None:
        producer = await self._ensure_producer()
        await producer.send_and_wait(self._kafka.topic, value=record, key=pool.encode())

    async def _ensure_producer(self) -> Any:
        async with self._start_lock:
            if self._producer is None:
                producer = new_aiokafka_producer(self._kafka)
                try:
                    await producer.start()
                except Exception:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    def close(self) -> None:
        """Stop the Kafka producer (bounded)."""

        async def stop() -> None:
            if self._producer is not None:
                await self._producer.stop()

        try:
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=15)
        except Exception as exc:  # closing is best effort
            logger.warning("the ingest's Kafka producer did not stop cleanly: %r", exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
