"""A log gate for recurring conditions: one line per key per interval, with a suppressed count.

Recurring conditions (rejected events, failing sends) are counted in the producer's stats; the
log only says that they happen, at most once per ``interval_s`` per key.
"""

from __future__ import annotations

import threading
import time

__all__ = ["LogGate"]


class LogGate:
    """Decides whether a recurring condition should be logged now."""

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._next_at: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def admit(self, key: str) -> int | None:
        """``None`` to stay quiet; otherwise the number of occurrences suppressed since the last
        admitted one (log it, then stay quiet for ``interval_s``)."""
        now = time.monotonic()
        with self._lock:
            if now < self._next_at.get(key, 0.0):
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return None
            self._next_at[key] = now + self._interval_s
            return self._suppressed.pop(key, 0)
