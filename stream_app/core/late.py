"""Late events: the side output for events whose window had already closed when they arrived.

A late event is not merged into any window. It is counted (in total, and per pool x region scope
on that scope's next aggregate) and kept here, with where it came from, until the runtime drains
it (to a late-events table or topic). The buffer is bounded: past ``max_events`` further late
events are only counted as dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from schemas.wire import WireEvent

__all__ = ["LateBuffer", "LateEvent"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class LateEvent:
    """One late event, where it was read from, and the watermark it arrived behind."""

    event: WireEvent
    source: str
    partition: int
    offset: int
    window_start_ms: int
    watermark_ms: int


class LateBuffer(Generic[_T]):
    """A bounded list of side-output items (late events, events refused for their time); what
    does not fit is counted in ``dropped``."""

    __slots__ = ("_events", "_max_events", "dropped")

    def __init__(self, max_events: int) -> None:
        if max_events < 0:
            raise ValueError(f"max_events must be >= 0, got {max_events}")
        self._max_events = max_events
        self._events: list[_T] = []
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._events)

    def offer(self, late: _T) -> bool:
        """Keep ``late`` if there is room; return whether it was kept."""
        if len(self._events) >= self._max_events:
            self.dropped += 1
            return False
        self._events.append(late)
        return True

    def drain(self) -> list[_T]:
        """Hand over everything kept so far, oldest first, and start a new list."""
        events, self._events = self._events, []
        return events
