"""The worker's dead letters: every kind counted, queued for ``<prefix>.requests.dlq``.

One place builds, counts and queues them, for the record path, the flush cycle and flush
rebuilds alike, so a kind is counted the same way wherever it is found. The queue is delivered
by the cycle before the offsets of the records it stands for are committed
(:mod:`stream_app.worker.cycle_store`). Record layout: :mod:`stream_app.worker.records`.
"""

from __future__ import annotations

import logging
from typing import Literal

from schemas.wire import encode_event
from stream_app.core.late import LateEvent
from stream_app.core.record_time import OutOfRange
from stream_app.storage.sink import RejectedRow
from stream_app.worker.partitions import RangeIntent
from stream_app.worker.publisher import PUBLISH_TIMEOUT_S, TopicPublisher
from stream_app.worker.records import dead_letter_record
from stream_app.worker.stats import WorkerStats

__all__ = ["DeadLetterKind", "WorkerDeadLetters", "late_reason", "rejected_reason"]

logger = logging.getLogger(__name__)

DeadLetterKind = Literal["decode", "empty", "late", "clock_skew", "too_old", "internal", "rejected"]
"""Why a record (or one of its events) is a dead letter: the worker counts each kind.

``decode`` and ``empty``: the record; ``late``, ``clock_skew`` and ``too_old``: one event
(:mod:`stream_app.core.record_time`); ``internal``: the record made the consume path fail;
``rejected``: storage refused a row made from the partition's records."""

_LOGGED_FAILURES = 10


def late_reason(late: LateEvent) -> str:
    """The dead-letter reason of a late event (the same as the embedded runtime's)."""
    return (
        f"late: window starting {late.window_start_ms} had closed (watermark {late.watermark_ms})"
    )


def rejected_reason(source: RangeIntent, reason: str) -> str:
    """The dead-letter reason of a row storage refused, made from the records of ``source``."""
    return (
        f"rejected by storage (a row made from offsets {source.first_offset}-"
        f"{source.last_offset} of partition {source.partition}): {reason}"
    )


class WorkerDeadLetters:
    """Counts dead letters by kind in the worker's stats and queues them on the publisher."""

    def __init__(
        self,
        *,
        source: str,
        publisher: TopicPublisher,
        stats: WorkerStats,
        max_payload_bytes: int,
    ) -> None:
        self._source = source
        self._publisher = publisher
        self._stats = stats
        self._max_payload_bytes = max_payload_bytes

    async def deliver(self) -> None:
        """Deliver what is queued (PublishUnavailable: what failed stays queued)."""
        await self._publisher.deliver(PUBLISH_TIMEOUT_S)

    def discard(self) -> None:
        """Forget what is queued: the records it stands for are read again by their owner."""
        self._publisher.discard()

    def record(
        self,
        kind: DeadLetterKind,
        *,
        partition: int,
        offset: int,
        key: bytes | None,
        payload: bytes,
        reason: str,
        now_ms: int,
    ) -> None:
        """Queue one dead letter of ``kind`` and count it."""
        self._stats.count_dead_letter(kind)
        record_key, value, headers = dead_letter_record(
            source=self._source,
            partition=partition,
            offset=offset,
            key=key,
            payload=payload,
            reason=reason,
            now_ms=now_ms,
            max_payload_bytes=self._max_payload_bytes,
        )
        self._publisher.add(record_key, value, headers)

    def late(self, late: LateEvent, now_ms: int) -> None:
        """A late event (counted in its scope's window, kept here with the reason)."""
        payload = encode_event(late.event)
        key = late.event.pool.encode()
        self.record(
            "late",
            partition=late.partition,
            offset=late.offset,
            key=key,
            payload=payload,
            reason=late_reason(late),
            now_ms=now_ms,
        )

    def out_of_range(self, refused: OutOfRange, now_ms: int) -> None:
        """An event refused for its time; clock skew is also counted per source host."""
        if refused.kind == "clock_skew":
            self._stats.count_clock_skew(refused.event.source_host)
        self.record(
            refused.kind,
            partition=refused.partition,
            offset=refused.offset,
            key=refused.event.pool.encode(),
            payload=encode_event(refused.event),
            reason=refused.reason,
            now_ms=now_ms,
        )

    def rejected(self, source: RangeIntent, row: RejectedRow, now_ms: int) -> None:
        """A row storage refused for its data (the rest of its flush was stored)."""
        self.record(
            "rejected",
            partition=source.partition,
            offset=source.first_offset,
            key=row.contribution.scope.pool.encode(),
            payload=row.document(),
            reason=rejected_reason(source, row.reason),
            now_ms=now_ms,
        )

    def failed(
        self,
        exc: Exception,
        *,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        now_ms: int,
    ) -> None:
        """A record made the consume path fail: dead-letter it, count it, log the first ones."""
        self._stats.consume_errors += 1
        failures = self._stats.consume_errors
        if failures <= _LOGGED_FAILURES or failures % 1000 == 0:
            logger.error(
                "record %s/%d@%d failed in the consume path (%d so far): dead-lettered",
                self._source,
                partition,
                offset,
                failures,
                exc_info=exc,
            )
        reason = f"internal: {type(exc).__name__}: {exc}"
        self.record(
            "internal",
            partition=partition,
            offset=offset,
            key=key,
            payload=value or b"",
            reason=reason,
            now_ms=now_ms,
        )
