"""What a worker keeps per assigned partition, and what it commits with the partition's offset.

Each partition of ``<prefix>.requests`` has its own :class:`WindowAggregator`: records are keyed
by pool, so a partition holds every event of its pools, its watermark is not held back (or
pushed forward) by other partitions, and giving a partition up drops exactly its state.

``next_offset`` is the first offset not yet aggregated. Records below it are skipped: they are
either stored already or aggregated and waiting for the next flush (Faust seeks back to the
committed offset after a rebalance, so the same records may be delivered twice).

Commit metadata (:class:`CommitMetadata`, compact JSON) carries the partition's watermark and,
while a flush is being written, the flush's *intent*: the exact offset ranges (and their
starting watermarks) of every partition it covers, so whoever takes the partition over can
rebuild that flush (docs/architecture.md, "The flush cycle"). Offsets travel as
:data:`Partition` and :class:`OffsetRange` values, never as bare tuples.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import NewType

from aiokafka.partitioner import murmur2  # type: ignore[import-untyped, unused-ignore]

from schemas.wire import WireEvent
from stream_app.core.aggregator import WindowAggregator
from stream_app.core.watermark import WatermarkState
from stream_app.worker.ingest import RecentBatches

__all__ = [
    "MAX_METADATA_BYTES",
    "CommitMetadata",
    "CommitPoint",
    "OffsetRange",
    "Partition",
    "PartitionState",
    "RangeIntent",
    "partition_for_pool",
]

logger = logging.getLogger(__name__)

_METADATA_VERSION = 1
MAX_METADATA_BYTES = 4_000
"""Kafka's default ``offset.metadata.max.bytes`` is 4096."""
NO_WATERMARK = WatermarkState(watermark_ms=None, max_event_ms=None)

Partition = NewType("Partition", int)
"""A partition of the requests topic (the worker consumes one topic)."""


@dataclass(frozen=True, slots=True)
class OffsetRange:
    """Offsets ``first..last`` (inclusive) of one partition."""

    partition: Partition
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class RangeIntent:
    """Offsets ``first..last`` of one partition in a flush, and the watermark before them."""

    partition: Partition
    first_offset: int
    last_offset: int
    watermark: WatermarkState

    @property
    def offsets(self) -> OffsetRange:
        return OffsetRange(self.partition, self.first_offset, self.last_offset)


@dataclass(frozen=True, slots=True)
class CommitMetadata:
    """The metadata committed with a partition's offset."""

    watermark: WatermarkState
    intent: tuple[RangeIntent, ...] = ()

    def encode(self) -> str:
        doc: dict[str, object] = {
            "v": _METADATA_VERSION,
            "wm": self.watermark.watermark_ms,
            "mx": self.watermark.max_event_ms,
        }
        if self.intent:
            doc["in"] = [
                [
                    r.partition,
                    r.first_offset,
                    r.last_offset,
                    r.watermark.watermark_ms,
                    r.watermark.max_event_ms,
                ]
                for r in self.intent
            ]
        return json.dumps(doc, separators=(",", ":"))

    @classmethod
    def decode(cls, metadata: str | None) -> CommitMetadata | None:
        """The metadata of a commit, or None when there is none or it is not ours."""
        if not metadata:
            return None
        try:
            doc = json.loads(metadata)
            if not isinstance(doc, dict) or doc.get("v") != _METADATA_VERSION:
                return None
            watermark = _watermark(doc["wm"], doc["mx"])
            intent = tuple(
                RangeIntent(Partition(int(p)), int(first), int(last), _watermark(wm, mx))
                for p, first, last, wm, mx in doc.get("in", ())
            )
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("ignoring unreadable commit metadata %r: %s", metadata[:80], exc)
            return None
        return cls(watermark, intent)


def _watermark(wm: object, mx: object) -> WatermarkState:
    return WatermarkState.from_dict({"watermark_ms": wm, "max_event_ms": mx})


def partition_for_pool(pool: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2) puts records keyed by ``pool`` in.

    The producer, Java clients and Faust use it; librdkafka tools need
    ``partitioner=murmur2_random`` to agree.
    """
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    return int(murmur2(pool.encode()) & 0x7FFFFFFF) % partitions


@dataclass(frozen=True, slots=True)
class CommitPoint:
    """An offset to commit for one partition (the next offset to read) and its metadata."""

    offset: int
    meta: CommitMetadata

    @property
    def metadata(self) -> str:
        return self.meta.encode()

    @property
    def watermark(self) -> WatermarkState:
        return self.meta.watermark


@dataclass(slots=True)
class PartitionState:
    """One assigned partition: its aggregator, read position and last commit.

    ``flushed_watermark`` is the watermark when the last flush was taken: the starting
    watermark of the records the next flush covers (what a rebuild starts from). ``recent``
    holds the ids of the partition's last envelopes (repeated ones are skipped);
    ``input_stalled`` whether fetch responses had stopped when last looked (idle clock).
    """

    partition: Partition
    aggregator: WindowAggregator
    next_offset: int
    committed: CommitPoint | None = None
    flushed_watermark: WatermarkState = NO_WATERMARK
    recent: RecentBatches | None = None
    input_stalled: bool = True
    raw: list[WireEvent] = field(default_factory=list)
    """Events of the records since the last flush, while raw events are kept (else empty)."""
