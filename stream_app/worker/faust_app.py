"""The Faust app of the stream worker: one agent over ``<prefix>.requests``, rebalance hooks.

Decisions (docs/architecture.md): records are batch envelopes (or single events) read as raw
bytes; windows live in the pure core, not in Faust tables (no tables, no changelogs, no
``on_window_close``); Faust's own web server is off (it would listen on all interfaces): the
worker serves ``/metrics`` and ``/health`` itself (:mod:`stream_app.worker.http`).

The requests topic is declared without acks, so Faust never commits it: the worker's
:class:`~stream_app.worker.committer.Committer` does (docs/architecture.md, "The flush cycle").
Hooks: ``on_partitions_revoked`` (after Faust stopped the flow and the agent finished its
record) calls :meth:`StreamWorker.on_revoked`; ``on_rebalance_complete`` (before Faust resumes
fetching and seeks to the committed offsets) calls :meth:`StreamWorker.on_rebalance_complete`,
so no record is delivered before its partition's read position is known.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import aiokafka  # type: ignore[import-untyped, unused-ignore]
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from stream_app.worker.partitions import Partition
from stream_app.worker.publisher import Headers
from stream_app.worker.runtime import StreamWorker
from stream_app.worker.settings import WorkerSettings

__all__ = ["FaustSender", "WorkerApp", "build_app", "connect_worker"]

_AGENT_NAME = "pwm-requests"


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, with the worker's fetch wait instead of Faust's fixed 1.5 s.

    A fetch request names every assigned partition that has no records buffered, and the
    broker holds it until data arrives or the wait runs out; one fetch per broker is in flight
    at a time. While a backlog drains, partitions reach their end at different times: a fetch
    for those alone is held the whole wait, and the partitions that still have records wait
    behind it (docs/operations.md, "Draining a backlog").
    """

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        app = self.app
        if isinstance(app, WorkerApp):
            # The constructor argument, stored by AIOKafkaConsumer and read by its fetcher
            # (created at start): Faust passes 1500 and offers no setting for it.
            consumer._fetch_max_wait_ms = app.fetch_max_wait_ms
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class WorkerApp(faust.App):
    """The worker's Faust app: Faust's own, with its consumer's fetch wait configurable."""

    def __init__(self, *args: Any, fetch_max_wait_ms: int, **kwargs: Any) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> _Transport:
        return _Transport(self.conf.broker_consumer, self)


def build_app(settings: WorkerSettings) -> WorkerApp:
    """A Faust app for ``settings`` (not started; no agent yet: see :func:`connect_worker`)."""
    compression = None if settings.producer_compression == "none" else settings.producer_compression
    return WorkerApp(
        settings.app_id,
        broker=settings.broker_urls,
        broker_client_id=settings.client_id,
        autodiscover=False,
        store="memory://",
        web_enabled=False,  # /metrics and /health are served by stream_app.worker.http
        topic_replication_factor=settings.topics.replication_factor,
        topic_allow_declare=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        consumer_max_fetch_size=settings.fetch_max_partition_bytes,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        stream_buffer_maxsize=settings.stream_buffer_records,
        stream_wait_empty=True,
        stream_recovery_delay=0.1,
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=settings.broker_heartbeat_interval_s,
        broker_request_timeout=settings.broker_request_timeout_s,
        broker_rebalance_timeout=settings.broker_rebalance_timeout_s,
        broker_commit_interval=3600.0,
        producer_acks=-1,
        producer_compression_type=compression,
    )


class FaustSender:
    """:class:`~stream_app.worker.publisher.RecordSender` over the app's producer."""

    def __init__(self, app: faust.App) -> None:
        self._app = app

    async def send(
        self, topic: str, key: bytes | None, value: bytes, headers: Headers
    ) -> Awaitable[object]:
        ack: Awaitable[object] = await self._app.producer.send(
            topic, key, value, partition=None, timestamp=None, headers=list(headers)
        )
        return ack


def connect_worker(app: faust.App, worker: StreamWorker) -> None:
    """Register the agent feeding ``worker`` and the rebalance hooks on ``app``."""
    topic_name = worker.source
    topic = app.topic(topic_name, key_serializer="raw", value_serializer="raw", acks=False)
    process = worker.process

    async def consume(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            stamp = message.timestamp
            timestamp_ms = round(stamp * 1000) if stamp is not None and stamp > 0 else None
            process(message.partition, message.offset, message.key, message.value, timestamp_ms)

    app.agent(topic, name=_AGENT_NAME, concurrency=1)(consume)

    async def on_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await worker.on_revoked()

    async def on_complete(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        assigned = {
            Partition(tp.partition) for tp in app.consumer.assignment() if tp.topic == topic_name
        }
        await worker.on_rebalance_complete(assigned)

    app.on_partitions_revoked.connect(on_revoked, weak=False)
    app.on_rebalance_complete.connect(on_complete, weak=False)
