"""A counter that request threads bump without taking a lock.

``int += 1`` on a shared attribute is a read, an add and a write: two threads can lose an
increment between them, so a plain counter needs a lock, and a lock on the request path is what
makes ``emit()`` slow under contention (a thread preempted while holding it stalls every other
emitter). A :class:`Tally` records each increment as one ``bytearray.append``, a single C call
that no other thread can interleave with; its value is the number of bytes. Now and then the
bytes are folded into an integer (under a lock, once per ``fold_at`` increments) so memory stays
bounded.
"""

from __future__ import annotations

import threading

__all__ = ["Tally"]


class Tally:
    """A monotonic counter: :meth:`add` from any thread, :attr:`value` from any thread."""

    __slots__ = ("_fold_at", "_folded", "_lock", "_marks")

    def __init__(self, fold_at: int = 65_536) -> None:
        self._marks = bytearray()
        self._folded = 0
        self._fold_at = fold_at
        self._lock = threading.Lock()

    def add(self) -> None:
        marks = self._marks
        marks.append(1)
        if len(marks) >= self._fold_at:
            self._fold()

    def _fold(self) -> None:
        with self._lock:
            count = len(self._marks)
            # Marks appended between len() and del stay and are counted later.
            del self._marks[:count]
            self._folded += count

    @property
    def value(self) -> int:
        with self._lock:
            return self._folded + len(self._marks)
