"""Event time against record time: one host's clock cannot make other hosts' events late.

Every record has a *record time*: the Kafka record's timestamp (the broker's append time on a
requests topic created by ``topics create``, which sets ``message.timestamp.type=LogAppendTime``)
or, for the in-process and HTTP transports, the moment the record was received. Record times
come from a clock the fleet hosts do not control, and they are stored with the record, so a flush
rebuilt from the same records judges them the same way.

Two rules follow (docs/architecture.md, "Clock skew"):

Bounds
    An event more than ``max_clock_skew_ms`` ahead of its record time is refused as
    ``clock_skew``; one more than ``max_event_age_ms`` behind it as ``too_old``. Refused events
    are not counted in any window: the runtime dead-letters them with the reason and counts
    them per source host (a built-in pipeline-health alert names the host). Dead-lettering, not
    clamping: a clamped event would be counted in a window it does not belong to.
Watermark cap
    A record moves the watermark by its newest accepted event time, but never past its record
    time (:meth:`stream_app.core.aggregator.WindowAggregator.add`). An event a little ahead of
    the fleet (within the bound) is still counted, in its own window, and cannot close windows
    that other hosts' events are still arriving for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Literal

from schemas.wire import WireEvent

__all__ = ["HostCounts", "OutOfRange", "OutOfRangeKind", "RecordTimeBounds"]

OutOfRangeKind = Literal["clock_skew", "too_old"]

_ts = attrgetter("ts_ms")


@dataclass(frozen=True, slots=True)
class OutOfRange:
    """One event refused for its time, where it was read from, and its record's time."""

    event: WireEvent
    source: str
    partition: int
    offset: int
    record_ms: int
    kind: OutOfRangeKind

    @property
    def reason(self) -> str:
        """The dead-letter reason: the rule broken and by how much."""
        delta_ms = self.event.ts_ms - self.record_ms
        if self.kind == "clock_skew":
            return (
                f"clock_skew: event time {self.event.ts_ms} is {delta_ms} ms ahead of its record "
                f"time {self.record_ms} (host {self.event.source_host})"
            )
        return (
            f"too_old: event time {self.event.ts_ms} is {-delta_ms} ms behind its record time "
            f"{self.record_ms} (host {self.event.source_host})"
        )


@dataclass(frozen=True, slots=True)
class RecordTimeBounds:
    """How far an event's time may be from its record's (None: no bound on that side)."""

    max_clock_skew_ms: int | None
    max_event_age_ms: int | None

    def limits(self, record_ms: int) -> tuple[int | None, int | None]:
        """The oldest and newest event times accepted for a record at ``record_ms``."""
        high = None if self.max_clock_skew_ms is None else record_ms + self.max_clock_skew_ms
        low = None if self.max_event_age_ms is None else record_ms - self.max_event_age_ms
        return low, high

    def split(
        self, events: Sequence[WireEvent], record_ms: int, newest_ms: int
    ) -> tuple[Sequence[WireEvent], list[tuple[WireEvent, OutOfRangeKind]]]:
        """The events within bounds, and the refused ones with their kind.

        ``newest_ms`` is the greatest event time of ``events`` (the caller has it already): a
        record whose newest event is within the upper bound and whose oldest is within the lower
        one is returned as it is, without a copy.
        """
        low, high = self.limits(record_ms)
        if (high is None or newest_ms <= high) and (low is None or min(map(_ts, events)) >= low):
            return events, []
        kept: list[WireEvent] = []
        refused: list[tuple[WireEvent, OutOfRangeKind]] = []
        for ev in events:
            if high is not None and ev.ts_ms > high:
                refused.append((ev, "clock_skew"))
            elif low is not None and ev.ts_ms < low:
                refused.append((ev, "too_old"))
            else:
                kept.append(ev)
        return kept, refused


class HostCounts:
    """Refused events per source host, bounded: past ``max_hosts`` hosts, counted as ``other``."""

    __slots__ = ("_max_hosts", "counts")

    OTHER = "other"

    def __init__(self, max_hosts: int = 10_000) -> None:
        self._max_hosts = max_hosts
        self.counts: dict[str, int] = {}

    def add(self, host: str) -> None:
        counts = self.counts
        if host not in counts and len(counts) >= self._max_hosts:
            host = self.OTHER
        counts[host] = counts.get(host, 0) + 1
