"""One flush cycle's data: what is taken from the partitions' aggregators, in which units it
is written, and how far its steps got (docs/architecture.md, "The flush cycle").

:func:`take_cycle` (no I/O) closes the windows due at each partition's idle clock and takes each
partition's flush with the offset range it covers. A :class:`Unit` is ONE insert and the intent
committed before it; an intent lists every range of its unit in each of its partitions' commit
metadata, so a unit holds at most :data:`MAX_RANGES_PER_UNIT` partitions (Kafka keeps 4 KB of
metadata per offset by default).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from schemas.aggregates import WindowAggregate
from schemas.wire import WireEvent
from stream_app.core.contributions import Contribution, Flush
from stream_app.core.late import LateEvent
from stream_app.core.record_time import OutOfRange
from stream_app.worker.errors import WorkerFatal
from stream_app.worker.partitions import (
    MAX_METADATA_BYTES,
    CommitMetadata,
    CommitPoint,
    Partition,
    PartitionState,
    RangeIntent,
)

__all__ = [
    "MAX_RANGES_PER_UNIT",
    "Backoff",
    "Cycle",
    "PartitionWindows",
    "Step",
    "Unit",
    "range_of",
    "take_cycle",
]

MAX_RANGES_PER_UNIT = 40


@dataclass(frozen=True, slots=True)
class PartitionWindows:
    """What one partition's aggregator closed in a cycle."""

    windows: list[WindowAggregate]
    """Pool x region windows first, then per-proxy windows."""
    closed_through_ms: int | None
    """Every window ending at or before this time is closed (the watermark); None: no events."""


@dataclass
class Unit:
    """One flush (one insert) and the intent committed before it."""

    flush: Flush
    intent: dict[Partition, CommitPoint]
    """Committed before the write: unchanged offsets, metadata with the flush's ranges."""
    parts: list[tuple[RangeIntent, Flush]] = field(default_factory=list)
    """The partitions' flushes merged into ``flush``, with their ranges."""
    raw: list[WireEvent] = field(default_factory=list)
    """The raw events of the unit's records, while raw events are kept (else empty)."""

    def range_of(self, contribution: Contribution) -> RangeIntent:
        """The range of the partition whose flush holds ``contribution`` (one of ``flush``'s)."""
        return range_of(self.parts, contribution)


def range_of(parts: Iterable[tuple[RangeIntent, Flush]], contribution: Contribution) -> RangeIntent:
    """The range of the partition flush among ``parts`` that holds ``contribution``."""
    for intent, part in parts:
        if any(c is contribution for c in part.scopes) or any(
            c is contribution for c in part.proxies
        ):
            return intent
    raise ValueError(f"{contribution.scope} is not a row of these flushes")


class Step(enum.IntEnum):
    """The steps of a cycle, in order (docs/architecture.md, "The flush cycle")."""

    WRITE = 1
    """Per unit: commit its intent, write its flush, dead-letter the rows storage refused."""
    OBSERVE = 2
    """Count the stored records' and closed windows' delays."""
    PUBLISH = 3
    """Queue the closed windows for ``<prefix>.windows``."""
    DELIVER = 4
    """Wait for the queued windows' acknowledgements."""
    NOTIFY = 5
    """Call the window listeners."""
    COMMIT = 6
    """Commit every partition's offset past its range, with its watermark."""
    DONE = 7


@dataclass
class Cycle:
    """What one cycle stores, publishes and commits, and how far it got: ``step`` is the next
    step to run (steps before it are done and never repeated), ``units_written`` how many of
    ``units`` the write step has written."""

    units: list[Unit]
    commits: dict[Partition, CommitPoint]
    """Committed after the writes: offsets past the ranges, the watermarks."""
    scopes: list[WindowAggregate]
    proxies: list[WindowAggregate]
    record_times: list[tuple[int, int]]
    """(events, mean event time) of every record the cycle stores (delay statistics)."""
    late: int = 0
    closed: dict[Partition, PartitionWindows] = field(default_factory=dict)
    """Per partition: the windows it closed in this cycle and how far its windows are closed."""
    step: Step = Step.WRITE
    units_written: int = 0


@dataclass
class Backoff:
    """Exponential backoff between ``initial_s`` and ``max_s``."""

    initial_s: float
    max_s: float
    current_s: float = field(init=False)

    def __post_init__(self) -> None:
        self.current_s = self.initial_s

    def next(self) -> float:
        delay = self.current_s
        self.current_s = min(self.max_s, self.current_s * 2)
        return delay

    def reset(self) -> None:
        self.current_s = self.initial_s


def take_cycle(
    states: Iterable[PartitionState],
    clocks: dict[Partition, int],
    record_times: list[tuple[int, int]],
    on_late: Callable[[LateEvent], None],
    on_refused: Callable[[OutOfRange], None] = lambda _: None,
) -> Cycle:
    """Close due windows at each partition's clock and take every partition's flush."""
    scopes: list[WindowAggregate] = []
    proxies: list[WindowAggregate] = []
    commits: dict[Partition, CommitPoint] = {}
    pending: list[tuple[RangeIntent, Flush]] = []
    raw: dict[Partition, list[WireEvent]] = {}
    by_partition: dict[Partition, PartitionWindows] = {}
    late = 0
    for state in states:
        aggregator = state.aggregator
        closed = aggregator.close_due_windows(clocks[state.partition])
        scopes.extend(closed.scopes)
        proxies.extend(closed.proxies)
        by_partition[state.partition] = PartitionWindows(
            [*closed.scopes, *closed.proxies], aggregator.watermark_ms
        )
        flush = aggregator.flush()
        for event in aggregator.drain_late():
            late += 1
            on_late(event)
        for refused in aggregator.drain_out_of_range():
            on_refused(refused)
        watermark = aggregator.watermark_state()
        if flush.ranges:
            (span,) = flush.ranges  # one partition, one source
            start = RangeIntent(
                state.partition, span.first_offset, span.last_offset, state.flushed_watermark
            )
            pending.append((start, flush))
            if state.raw:
                raw[state.partition], state.raw = state.raw, []
            commits[state.partition] = CommitPoint(span.last_offset + 1, CommitMetadata(watermark))
        elif state.committed is not None and state.committed.watermark != watermark:
            commits[state.partition] = CommitPoint(
                state.committed.offset, CommitMetadata(watermark)
            )
        state.flushed_watermark = watermark
    units = [
        _unit(pending[i : i + MAX_RANGES_PER_UNIT], raw)
        for i in range(0, len(pending), MAX_RANGES_PER_UNIT)
    ]
    return Cycle(units, commits, scopes, proxies, record_times, late, by_partition)


def _unit(group: list[tuple[RangeIntent, Flush]], raw: dict[Partition, list[WireEvent]]) -> Unit:
    merged = Flush()
    events: list[WireEvent] = []
    for intent, flush in group:
        events.extend(raw.get(intent.partition, ()))
        merged.scopes.extend(flush.scopes)
        merged.proxies.extend(flush.proxies)
        merged.ranges.extend(flush.ranges)
    ranges = tuple(r for r, _ in group)
    points = {
        r.partition: CommitPoint(r.first_offset, CommitMetadata(r.watermark, ranges))
        for r in ranges
    }
    size = max(len(p.metadata) for p in points.values())
    if size > MAX_METADATA_BYTES:  # cannot happen with MAX_RANGES_PER_UNIT; be loud
        raise WorkerFatal(f"flush intent of {size} bytes exceeds {MAX_METADATA_BYTES}")
    return Unit(merged, points, group, events)
