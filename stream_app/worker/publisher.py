"""At-least-once publication of records to one topic, settled before offsets are committed.

The record path only queues (:meth:`TopicPublisher.add`, no I/O). The worker's cycle calls
:meth:`TopicPublisher.deliver` before it writes a flush (dead letters) or commits (closed
windows): every queued record is sent and its acknowledgement awaited. Records Kafka refuses
for good are dropped and counted (:attr:`PublisherStats.rejected`); the others stay queued and
:class:`~stream_app.worker.errors.PublishUnavailable` is raised, so the cycle retries later
without committing. A record whose acknowledgement was lost may be published twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from stream_app.worker.errors import PublishUnavailable
from stream_app.worker.kafka_errors import is_retriable

__all__ = ["PUBLISH_TIMEOUT_S", "Headers", "PublisherStats", "RecordSender", "TopicPublisher"]

logger = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 10.0
"""How long the worker waits for the acknowledgements of what it publishes (dead letters,
closed windows) before the step is retried later."""

Headers = Sequence[tuple[str, bytes]]


class RecordSender(Protocol):
    """Sends one record; the returned awaitable resolves when the broker acknowledged it."""

    async def send(
        self, topic: str, key: bytes | None, value: bytes, headers: Headers
    ) -> Awaitable[object]: ...


@dataclass(slots=True)
class _Queued:
    key: bytes | None
    value: bytes
    headers: Headers


@dataclass
class PublisherStats:
    """Counters of one publisher (never reset)."""

    queued: int = 0
    delivered: int = 0
    rejected: int = 0
    retries: int = 0


@dataclass
class TopicPublisher:
    """Queues records for ``topic`` and delivers them on demand (see the module docstring)."""

    sender: RecordSender
    topic: str
    stats: PublisherStats = field(default_factory=PublisherStats)
    _queue: list[_Queued] = field(default_factory=list)

    def add(self, key: bytes | None, value: bytes, headers: Headers = ()) -> None:
        """Queue one record (no I/O)."""
        self._queue.append(_Queued(key, value, headers))
        self.stats.queued += 1

    @property
    def pending(self) -> int:
        return len(self._queue)

    def discard(self) -> int:
        """Forget what is queued (its source records will be read again); returns how many."""
        dropped = len(self._queue)
        self._queue = []
        return dropped

    async def deliver(self, timeout_s: float) -> int:
        """Send everything queued and wait for the acknowledgements; returns how many.

        Raises :class:`PublishUnavailable` (what failed stays queued) when the broker did not
        acknowledge everything within ``timeout_s``.
        """
        if not self._queue:
            return 0
        batch, self._queue = self._queue, []
        outcomes = await self._send_all(batch, timeout_s)
        retry: list[_Queued] = []
        delivered = 0
        last_error: BaseException | None = None
        for item, outcome in zip(batch, outcomes, strict=True):
            if outcome is None:
                delivered += 1
            elif is_retriable(outcome):
                retry.append(item)
                last_error = outcome
            else:
                self.stats.rejected += 1
                logger.error(
                    "%s refused a record of %d bytes for good (dropped): %r",
                    self.topic,
                    len(item.value),
                    outcome,
                )
        self.stats.delivered += delivered
        if retry:
            self.stats.retries += 1
            self._queue = retry + self._queue
            raise PublishUnavailable(
                f"{len(retry)} record(s) for {self.topic} not acknowledged: {last_error!r}"
            )
        return delivered

    async def _send_all(self, batch: list[_Queued], timeout_s: float) -> list[BaseException | None]:
        outcomes: list[BaseException | None] = [None] * len(batch)
        acks: dict[int, asyncio.Future[object]] = {}
        try:
            async with asyncio.timeout(timeout_s):
                for i, item in enumerate(batch):
                    try:
                        ack = await self.sender.send(self.topic, item.key, item.value, item.headers)
                    except Exception as exc:
                        outcomes[i] = exc
                        continue
                    acks[i] = asyncio.ensure_future(ack)
                if acks:
                    await asyncio.wait(acks.values())
        except TimeoutError:
            pass
        for i, ack in acks.items():
            if not ack.done():  # left to the producer: a late ack only means a duplicate
                outcomes[i] = TimeoutError(f"no acknowledgement within {timeout_s} s")
            elif ack.cancelled():
                outcomes[i] = TimeoutError("acknowledgement cancelled")
            else:
                outcomes[i] = ack.exception()
        for i in range(len(batch)):
            if i not in acks and outcomes[i] is None:
                outcomes[i] = TimeoutError(f"not sent within {timeout_s} s")
        return outcomes
