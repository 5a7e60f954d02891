"""Partition hand-over hooks: components that keep per-partition state beside the aggregators.

A :class:`PartitionObserver` hears when the worker has taken partitions over (after their open
windows are restored, before any of their windows closes) and when it gives partitions up
(after their last windows were stored and announced, before another worker may take them). The
worker awaits each call, so state saved in ``partitions_revoked`` is in place before the next
owner's ``partitions_assigned`` runs. ``partitions_lost``: the group moved on without this
worker (its commits were fenced); another worker may own the partitions already, so nothing
may be saved for them. Observer errors are logged, never raised: hand-over of
the records themselves must not depend on them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Set
from typing import Protocol

__all__ = ["PartitionObserver", "PartitionObservers"]

logger = logging.getLogger(__name__)

_CALL_TIMEOUT_S = 30.0
"""An observer that takes longer is abandoned: partitions must change hands regardless."""


async def _call(observer: object, what: str, call: Awaitable[None], partitions: Set[int]) -> None:
    try:
        async with asyncio.timeout(_CALL_TIMEOUT_S):
            await call
    except TimeoutError:
        logger.warning(
            "%r took over %.0f s on %s %s", observer, _CALL_TIMEOUT_S, what, sorted(partitions)
        )
    except Exception:
        logger.exception("%r failed on %s %s", observer, what, sorted(partitions))


class PartitionObserver(Protocol):
    async def partitions_assigned(self, partitions: set[int]) -> None: ...

    async def partitions_revoked(self, partitions: set[int]) -> None: ...

    async def partitions_lost(self, partitions: set[int]) -> None: ...


class PartitionObservers:
    """The registered observers, called in registration order."""

    def __init__(self) -> None:
        self._observers: list[PartitionObserver] = []

    def add(self, observer: PartitionObserver) -> None:
        self._observers.append(observer)

    async def assigned(self, partitions: Set[int]) -> None:
        for observer in self._observers:
            try:
                await observer.partitions_assigned(set(partitions))
            except Exception:
                logger.exception(
                    "%r failed on partitions %s assigned", observer, sorted(partitions)
                )

    async def revoked(self, partitions: Set[int]) -> None:
        for observer in self._observers:
            await _call(
                observer, "revoked", observer.partitions_revoked(set(partitions)), partitions
            )

    async def lost(self, partitions: Set[int]) -> None:
        for observer in self._observers:
            await _call(observer, "lost", observer.partitions_lost(set(partitions)), partitions)
