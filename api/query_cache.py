"""A short-lived, shared cache of read answers: dashboards refresh, many at once.

Twenty-five dashboards refreshing every 10 s ask the same few questions (the fleet summary, a
pool's 90-day series) within moments of each other, and the answer cannot change faster than
the data: a window settles every ``window_s``. :class:`QueryCache` keeps each answer for
``ttl_s`` (``PWM_API_CACHE_TTL_S``, 0 turns it off) and computes it once however many clients
ask at the same time (single flight): the others wait for that one computation. Keys are the
route and its validated parameters, plus the time bucket of ``ttl_s``, so an answer is never
older than ``ttl_s``. Failures are not kept. Bounded: at most ``max_entries`` answers, the
oldest dropped first.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

__all__ = ["QueryCache"]

T = TypeVar("T")


class QueryCache:
    """Answers by key for ``ttl_s`` seconds, one computation per key at a time."""

    def __init__(
        self,
        ttl_s: float,
        *,
        max_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._answers: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._pending: dict[Hashable, asyncio.Future[Any]] = {}
        self.hits = 0
        self.misses = 0

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        """The answer for ``key``: kept, being computed (awaited), or computed now."""
        if self.ttl_s <= 0:
            return await compute()
        now = self._clock()
        kept = self._answers.get(key)
        if kept is not None and kept[0] > now:
            self.hits += 1
            value: T = kept[1]
            return value
        pending = self._pending.get(key)
        if pending is not None:
            self.hits += 1
            shared: T = await asyncio.shield(pending)
            return shared
        self.misses += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            answer = await compute()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        else:
            future.set_result(answer)
            self._keep(key, answer, now)
            return answer
        finally:
            del self._pending[key]

    def _keep(self, key: Hashable, answer: Any, now: float) -> None:
        self._answers[key] = (now + self.ttl_s, answer)
        self._answers.move_to_end(key)
        while len(self._answers) > self._max_entries:
            self._answers.popitem(last=False)

    def bucket(self, now_s: float) -> int:
        """The time bucket of ``now_s`` (part of every key, so answers age out together)."""
        return int(now_s // self.ttl_s) if self.ttl_s > 0 else 0
