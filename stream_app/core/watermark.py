"""The event-time watermark, with a wall-clock rule for idle streams.

The watermark is the event time up to which the stream is taken to be complete: a window whose
end is at or below it is closed, and an event that belongs to a closed window is late.

Event rule
    ``watermark = max event time seen - grace_ms``. It only moves forward. Each record is judged
    against the watermark as it stood when the record arrived, and then moves it, so the events
    of one record (one batch envelope) are never late relative to each other.
Wall-clock (idle) rule
    When no event newer than the watermark has arrived for ``idle_timeout_ms`` of wall time, the
    watermark moves forward with the wall clock from where it stood at that last arrival:
    ``watermark >= anchor_watermark + (now_ms - anchor_wall_ms - idle_timeout_ms)``. On a live
    stream (event time close to wall time) this is ``now - grace_ms - idle_timeout_ms``, so
    windows of keys (or a whole stream) that went quiet still close. Extrapolating from the last
    arrival instead of jumping to ``now`` keeps a replayed backlog (event time hours behind the
    wall clock) from being declared late just because the input paused for a moment.
Clock skew guard
    A record's event time counts for the watermark only up to ``now_ms + max_future_skew_ms``
    (``None`` turns the guard off), so one host with a clock far ahead cannot push the watermark
    past everybody else's events. Its events are still aggregated.

:meth:`Watermark.state` / :meth:`Watermark.restore` carry the watermark over a worker restart.
Time spent down is not idleness (the input was not being read), so a restore re-anchors the idle
rule at the restart's wall time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Watermark", "WatermarkState"]


@dataclass(frozen=True, slots=True)
class WatermarkState:
    """What a restarted worker needs to continue the watermark (JSON-friendly via ``as_dict``)."""

    watermark_ms: int | None
    max_event_ms: int | None

    def as_dict(self) -> dict[str, int | None]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WatermarkState:
        """Rebuild from :meth:`as_dict` output; raises ValueError on a malformed mapping."""
        fields = ("watermark_ms", "max_event_ms")
        if set(data) != set(fields):
            raise ValueError(f"watermark state needs exactly the keys {fields}, got {sorted(data)}")
        values: dict[str, int | None] = {}
        for name in fields:
            value = data[name]
            if value is not None and type(value) is not int:
                raise ValueError(f"watermark state {name} must be an integer or null: {value!r}")
            values[name] = value
        return cls(**values)


class Watermark:
    """Event-time watermark of one worker (see the module docstring for the rules)."""

    __slots__ = (
        "_anchor_wall_ms",
        "_anchor_watermark_ms",
        "_grace_ms",
        "_idle_timeout_ms",
        "_max_event_ms",
        "_max_future_skew_ms",
        "_watermark_ms",
        "skewed_records",
    )

    def __init__(
        self, *, grace_ms: int, idle_timeout_ms: int, max_future_skew_ms: int | None = None
    ) -> None:
        if grace_ms < 0 or idle_timeout_ms < 0:
            raise ValueError("grace_ms and idle_timeout_ms must be >= 0")
        if max_future_skew_ms is not None and max_future_skew_ms < 0:
            raise ValueError("max_future_skew_ms must be >= 0 or None")
        self._grace_ms = grace_ms
        self._idle_timeout_ms = idle_timeout_ms
        self._max_future_skew_ms = max_future_skew_ms
        self._watermark_ms: int | None = None
        self._max_event_ms: int | None = None
        self._anchor_watermark_ms: int | None = None
        self._anchor_wall_ms: int | None = None
        self.skewed_records = 0
        """Records whose event time was capped by the clock skew guard."""

    @property
    def value(self) -> int | None:
        """The current watermark in epoch ms, or None before the first event."""
        return self._watermark_ms

    @property
    def max_event_ms(self) -> int | None:
        """The greatest event time that counted for the watermark."""
        return self._max_event_ms

    def advance(self, now_ms: int) -> int | None:
        """Apply the idle rule at wall time ``now_ms``; return the watermark."""
        anchor_wall = self._anchor_wall_ms
        if anchor_wall is None or self._anchor_watermark_ms is None:
            return self._watermark_ms
        idle_ms = now_ms - anchor_wall - self._idle_timeout_ms
        if idle_ms > 0:
            candidate = self._anchor_watermark_ms + idle_ms
            current = self._watermark_ms
            if current is None or candidate > current:
                self._watermark_ms = candidate
        return self._watermark_ms

    def observe(self, max_event_ms: int, now_ms: int) -> int | None:
        """Account for a record whose newest event time is ``max_event_ms``, arrived at ``now_ms``.

        Call :meth:`advance` first (the record is judged against the watermark before it).
        Returns the watermark after the record.
        """
        skew = self._max_future_skew_ms
        if skew is not None and max_event_ms > now_ms + skew:
            max_event_ms = now_ms + skew
            self.skewed_records += 1
        before = self._watermark_ms
        if self._max_event_ms is None or max_event_ms > self._max_event_ms:
            self._max_event_ms = max_event_ms
        candidate = max_event_ms - self._grace_ms
        if before is None or candidate > before:
            self._watermark_ms = candidate
        if before is None or max_event_ms > before:
            # An event newer than the watermark: the stream is live, re-anchor the idle rule.
            self._anchor_watermark_ms = self._watermark_ms
            self._anchor_wall_ms = now_ms
        return self._watermark_ms

    def defer_idle(self, now_ms: int) -> None:
        """Treat ``now_ms`` as a moment of activity: the input is known to be behind or stalled.

        A runtime that knows its consumer is lagging (or the broker is unreachable) calls this so
        the idle rule does not close windows whose events are merely delayed.
        """
        if self._watermark_ms is not None:
            self._anchor_watermark_ms = self._watermark_ms
            self._anchor_wall_ms = now_ms

    def state(self) -> WatermarkState:
        return WatermarkState(watermark_ms=self._watermark_ms, max_event_ms=self._max_event_ms)

    def restore(self, state: WatermarkState, now_ms: int) -> None:
        """Continue from a saved state; the idle rule restarts from ``now_ms``.

        The watermark never moves back: restoring an older state than the current one keeps the
        current watermark.
        """
        current = self._watermark_ms
        restored = state.watermark_ms
        if restored is not None and (current is None or restored > current):
            self._watermark_ms = restored
        if state.max_event_ms is not None and (
            self._max_event_ms is None or state.max_event_ms > self._max_event_ms
        ):
            self._max_event_ms = state.max_event_ms
        if self._watermark_ms is not None:
            self._anchor_watermark_ms = self._watermark_ms
            self._anchor_wall_ms = now_ms
