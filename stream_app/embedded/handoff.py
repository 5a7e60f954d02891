"""A bounded hand-off of records from producer threads to the pipeline's event loop.

The in-process transport calls :meth:`RecordHandoff.deliver` from the producer's flush thread.
Capacity is a semaphore of record slots: when the pipeline falls behind (a slow or unavailable
sink), ``deliver`` waits up to ``put_timeout_s`` for a slot and then raises
:class:`producer.errors.TransportUnavailable`, so the producer keeps the batch, retries and
eventually counts drops in its own bounded buffer. Nothing here grows without bound.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading

from producer.errors import TransportUnavailable


class RecordHandoff:
    """Thread-safe, bounded queue of encoded records, consumed by one asyncio task."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, *, max_records: int, put_timeout_s: float = 1.0
    ) -> None:
        self._loop = loop
        self._slots = threading.BoundedSemaphore(max_records)
        self._items: collections.deque[bytes] = collections.deque()
        self._ready = asyncio.Event()
        self._put_timeout_s = put_timeout_s
        self._closed = False

    def deliver(self, pool: str, payload: bytes) -> None:
        """Hand one record over (called from any thread); raises TransportUnavailable when full."""
        if self._closed:
            raise TransportUnavailable("the in-process pipeline is stopped")
        if not self._slots.acquire(timeout=self._put_timeout_s):
            raise TransportUnavailable(
                f"in-process pipeline is behind: no free slot for pool {pool} "
                f"within {self._put_timeout_s}s"
            )
        self._items.append(payload)
        # A closed loop raises RuntimeError: the record stays queued for the final drain.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._ready.set)

    def take(self, max_records: int) -> list[bytes]:
        """Pop up to ``max_records`` (loop thread); their slots are freed by :meth:`done`."""
        items = self._items
        out: list[bytes] = []
        while items and len(out) < max_records:
            out.append(items.popleft())
        if not items:
            self._ready.clear()
            if items:  # appended between the check and the clear
                self._ready.set()
        return out

    def done(self, count: int) -> None:
        """Release ``count`` slots once their records are aggregated."""
        for _ in range(count):
            self._slots.release()

    async def wait(self, timeout_s: float) -> None:
        """Wait until records are ready or ``timeout_s`` passed."""
        if self._items:
            return
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except TimeoutError:
            return

    def close(self) -> None:
        """Refuse further deliveries."""
        self._closed = True

    def __len__(self) -> int:
        return len(self._items)
