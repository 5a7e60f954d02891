"""The open-window state of one level (pool x region, or per proxy): full sums until close.

Windows are kept per window start, so closing walks the few distinct starts in order and releases
everything it closes. Keys are plain tuples (``(pool, region)`` or ``(pool, region, proxy_id)``)
because this sits on the hot path; the aggregator turns them into scopes at its boundary.
Optionally the number of keys per window is bounded (``max_keys_per_window``): merging a new key
into a full window is refused (and reported) rather than growing it.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from stream_app.core.accumulator import Accumulator
from stream_app.core.windows import WindowSpec

__all__ = ["OpenWindows"]

K = TypeVar("K", bound=tuple[str, ...])


class OpenWindows(Generic[K]):
    """Accumulators of open windows, by window start then key."""

    __slots__ = ("_by_start", "_count", "_max_keys", "spec")

    def __init__(self, spec: WindowSpec, max_keys_per_window: int | None = None) -> None:
        self.spec = spec
        self._max_keys = max_keys_per_window
        self._by_start: dict[int, dict[K, Accumulator]] = {}
        self._count = 0

    def __len__(self) -> int:
        """Number of open (window, key) entries."""
        return self._count

    @property
    def window_starts(self) -> list[int]:
        """Starts of the open windows, oldest first."""
        return sorted(self._by_start)

    def get(self, window_start_ms: int, key: K) -> Accumulator | None:
        window = self._by_start.get(window_start_ms)
        return None if window is None else window.get(key)

    def merge(self, window_start_ms: int, key: K, delta: Accumulator) -> bool:
        """Add ``delta`` to the entry, created on first use if the bound allows.

        ``delta`` itself is never kept (a copy is). Returns False, changing nothing, when the
        key is new and its window is full.
        """
        window = self._by_start.get(window_start_ms)
        if window is None:
            window = self._by_start[window_start_ms] = {}
        acc = window.get(key)
        if acc is not None:
            acc.merge(delta)
            return True
        if self._max_keys is not None and len(window) >= self._max_keys:
            return False
        window[key] = delta.copy()
        self._count += 1
        return True

    def window(self, window_start_ms: int) -> dict[K, Accumulator]:
        """The entries of one window by key (created empty on first use); read it, and add
        entries only through :meth:`insert`."""
        window = self._by_start.get(window_start_ms)
        if window is None:
            window = self._by_start[window_start_ms] = {}
        return window

    def insert(self, window: dict[K, Accumulator], key: K, acc: Accumulator) -> bool:
        """Keep ``acc`` (not copied) as the new entry ``key`` of ``window`` (from :meth:`window`,
        without an entry for ``key``). Returns False, changing nothing, when the window is full.
        """
        if self._max_keys is not None and len(window) >= self._max_keys:
            return False
        window[key] = acc
        self._count += 1
        return True

    def earliest_start(self, key: K) -> int | None:
        """Start of the oldest open window that has an entry for ``key``."""
        for start in sorted(self._by_start):
            if key in self._by_start[start]:
                return start
        return None

    def close_through(self, watermark_ms: int) -> list[tuple[int, K, Accumulator]]:
        """Remove and return every entry whose window ends at or below ``watermark_ms``.

        Ordered by window start, then by key.
        """
        window_ms = self.spec.window_ms
        closed: list[tuple[int, K, Accumulator]] = []
        for start in sorted(self._by_start):
            if start + window_ms > watermark_ms:
                break
            window = self._by_start.pop(start)
            self._count -= len(window)
            for key in sorted(window):
                closed.append((start, key, window[key]))
        return closed
