"""Tumbling event-time windows.

A window of ``window_s`` seconds covers ``[window_start_ms, window_start_ms + window_s * 1000)``
with ``window_start_ms = ts_ms - ts_ms % (window_s * 1000)``: windows are aligned to the epoch, so
every worker, every rollup and every query agrees on them without coordination.

A window is *closed* once the watermark (:mod:`stream_app.core.watermark`, which already holds
the grace back: ``max event time - grace_ms``) has reached its end. In event time that is when an
event ``grace_ms`` past the window's end has been seen, so an event may arrive up to ``grace_ms``
out of order and still count.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WindowSpec"]


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """The size of a tumbling window and how long it waits for out-of-order events."""

    window_s: int
    grace_ms: int = 0

    def __post_init__(self) -> None:
        if type(self.window_s) is not int or self.window_s < 1:
            raise ValueError(f"window_s must be an integer >= 1, got {self.window_s!r}")
        if type(self.grace_ms) is not int or self.grace_ms < 0:
            raise ValueError(f"grace_ms must be an integer >= 0, got {self.grace_ms!r}")

    @property
    def window_ms(self) -> int:
        return self.window_s * 1000

    def start_ms(self, ts_ms: int) -> int:
        """Start of the window holding event time ``ts_ms``."""
        return ts_ms - ts_ms % (self.window_s * 1000)

    def end_ms(self, window_start_ms: int) -> int:
        """End (exclusive) of the window starting at ``window_start_ms``."""
        return window_start_ms + self.window_s * 1000

    def is_aligned(self, window_start_ms: int) -> bool:
        """Whether ``window_start_ms`` is the start of one of these windows."""
        return window_start_ms >= 0 and window_start_ms % (self.window_s * 1000) == 0

    def closing_event_ms(self, window_start_ms: int) -> int:
        """The event time whose arrival closes the window: its end plus the grace."""
        return window_start_ms + self.window_s * 1000 + self.grace_ms

    def is_closed(self, window_start_ms: int, watermark_ms: int | None) -> bool:
        """Whether the watermark has passed the window (its end is at or below the watermark)."""
        return watermark_ms is not None and window_start_ms + self.window_s * 1000 <= watermark_ms
