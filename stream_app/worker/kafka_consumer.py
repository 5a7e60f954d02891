"""The worker's control over its Kafka consumer: offsets with metadata, end offsets, pause.

Faust's own commit machinery commits what its streams acknowledged, which is not what this
worker needs (offsets must be committed only after the flush covering them is stored, with the
partition's watermark as metadata). So the worker's topic is declared without acks (Faust never
commits it) and :class:`FaustConsumerControl` commits through the aiokafka consumer Faust runs
in its consumer thread. This module is the one place that reaches into Faust's consumer
(``faust-streaming`` is pinned; ``tests/worker`` exercises every call against the real broker).

aiokafka errors are translated here: :class:`BrokerUnavailable` (retriable),
:class:`PartitionsLost` (a rebalance took the partitions) and :class:`WorkerFatal` (the group
may not commit at all, e.g. not authorised).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from aiokafka.errors import (  # type: ignore[import-untyped, unused-ignore]
    CommitFailedError,
    IllegalStateError,
    KafkaError,
)
from aiokafka.structs import (  # type: ignore[import-untyped, unused-ignore]
    OffsetAndMetadata,
    TopicPartition,
)
from faust.types import TP

from stream_app.worker.errors import BrokerUnavailable, PartitionsLost, WorkerFatal
from stream_app.worker.kafka_errors import is_retriable
from stream_app.worker.partitions import CommitPoint, Partition

__all__ = ["ConsumerControl", "FaustConsumerControl"]

logger = logging.getLogger(__name__)

_QUICK_TIMEOUT_S = 2.0
"""End offsets are read every cycle: an unreachable broker must not hold the cycle up."""


class ConsumerControl(Protocol):
    """What the worker runtime needs from its consumer (partitions of one topic)."""

    async def committed(self, partitions: Iterable[Partition]) -> dict[Partition, tuple[int, str]]:
        """Committed (offset, metadata) per partition; partitions never committed are absent."""

    async def commit(self, points: Mapping[Partition, CommitPoint]) -> None:
        """Commit offsets with metadata; raises BrokerUnavailable or PartitionsLost.

        Called by :class:`~stream_app.worker.committer.Committer` only."""

    async def end_offsets(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        """The next offset the broker would assign per partition; raises BrokerUnavailable."""

    def last_fetch_ms(self, partition: int) -> int | None:
        """Wall time (epoch ms) of the last fetch response for the partition, if any."""

    def pause(self, partitions: Iterable[int]) -> None:
        """Stop fetching these partitions (already fetched records still arrive)."""

    def resume(self, partitions: Iterable[int]) -> None:
        """Fetch these partitions again."""

    async def seek(self, partition: int, offset: int) -> None:
        """Read the partition from ``offset`` on."""

    async def partition_count(self) -> int | None:
        """Partitions of the topic per the cluster metadata (None if it cannot be known)."""


class _FaustApp(Protocol):
    @property
    def consumer(self) -> Any: ...


class FaustConsumerControl:
    """:class:`ConsumerControl` over a Faust app's aiokafka consumer (one topic)."""

    def __init__(self, app: _FaustApp, topic: str, *, request_timeout_s: float) -> None:
        self._app = app
        self.topic = topic
        self._timeout_s = request_timeout_s

    def _tp(self, partition: int) -> TopicPartition:
        return TopicPartition(self.topic, partition)

    @property
    def _thread(self) -> Any:
        return self._app.consumer._thread

    async def _in_consumer_thread(
        self, action: str, fn: Any, timeout_s: float | None = None
    ) -> Any:
        timeout_s = self._timeout_s if timeout_s is None else timeout_s
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation that
        # arrives as the call completes, and the worker's cycle loop then never stops.
        try:
            async with asyncio.timeout(timeout_s):
                return await self._thread.call_thread(fn)
        except TimeoutError as exc:
            raise BrokerUnavailable(f"{action}: no answer within {timeout_s} s") from exc

    async def committed(self, partitions: Iterable[Partition]) -> dict[Partition, tuple[int, str]]:
        tps = [self._tp(p) for p in partitions]
        if not tps:
            return {}

        async def fetch() -> dict[Any, Any]:
            consumer = self._thread._ensure_consumer()
            result: dict[Any, Any] = await consumer._coordinator.fetch_committed_offsets(tps)
            return result

        try:
            found = await self._in_consumer_thread("fetch committed offsets", fetch)
        except KafkaError as exc:
            raise _translate(exc, "fetch committed offsets") from exc
        return {
            Partition(tp.partition): (int(om.offset), om.metadata or "")
            for tp, om in found.items()
            if om.offset >= 0
        }

    async def commit(self, points: Mapping[Partition, CommitPoint]) -> None:
        if not points:
            return
        offsets = {
            self._tp(p): OffsetAndMetadata(point.offset, point.metadata)
            for p, point in points.items()
        }

        async def commit() -> None:
            await self._thread._ensure_consumer().commit(offsets)

        try:
            await self._in_consumer_thread("commit", commit)
        except (CommitFailedError, IllegalStateError) as exc:
            raise PartitionsLost(f"commit of {sorted(points)} refused: {exc}") from exc
        except KafkaError as exc:
            raise _translate(exc, "commit") from exc

    async def end_offsets(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        tps = [self._tp(p) for p in partitions]
        if not tps:
            return {}

        async def fetch() -> dict[Any, Any]:
            result: dict[Any, Any] = await self._thread._ensure_consumer().end_offsets(tps)
            return result

        try:
            found = await self._in_consumer_thread("end offsets", fetch, _QUICK_TIMEOUT_S)
        except (KafkaError, AssertionError) as exc:
            raise BrokerUnavailable(f"end offsets: {exc!r}") from exc
        return {Partition(tp.partition): int(offset) for tp, offset in found.items()}

    def last_fetch_ms(self, partition: int) -> int | None:
        try:
            value = self._thread._ensure_consumer().last_poll_timestamp(self._tp(partition))
        except (AssertionError, KafkaError, AttributeError):  # not assigned (any more)
            return None
        return int(value) if value else None

    def pause(self, partitions: Iterable[int]) -> None:
        self._app.consumer.pause_partitions({TP(self.topic, p) for p in partitions})

    def resume(self, partitions: Iterable[int]) -> None:
        # Faust's own TP type: its active-partition set asserts on it.
        self._app.consumer.resume_partitions({TP(self.topic, p) for p in partitions})

    async def seek(self, partition: int, offset: int) -> None:
        await self._app.consumer.seek(TP(self.topic, partition), offset)

    async def partition_count(self) -> int | None:
        async def fetch() -> int | None:
            consumer = self._thread._ensure_consumer()
            found = consumer.partitions_for_topic(self.topic)
            if not found:
                await consumer._client.force_metadata_update()
                found = consumer.partitions_for_topic(self.topic)
            return len(found) if found else None

        try:
            count: int | None = await self._in_consumer_thread("topic metadata", fetch)
        except KafkaError as exc:
            raise _translate(exc, "topic metadata") from exc
        return count


def _translate(exc: KafkaError, action: str) -> Exception:
    if is_retriable(exc):
        return BrokerUnavailable(f"{action}: {exc!r}")
    logger.error("%s failed for good: %r", action, exc)
    return WorkerFatal(f"{action}: Kafka refused it: {exc!r}")
