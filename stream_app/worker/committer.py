"""The one place that commits offsets of the requests topic (docs/architecture.md, "The flush
cycle"): a flush's *intent* before its write, the *progress* past it afterwards, and the
positions a takeover settles (past a rebuilt flush, or where storage is ahead of Kafka).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from stream_app.worker.errors import BrokerUnavailable, PartitionsLost
from stream_app.worker.kafka_consumer import ConsumerControl
from stream_app.worker.partitions import CommitPoint, Partition, PartitionState
from stream_app.worker.stats import WorkerStats

__all__ = ["Committer"]

logger = logging.getLogger(__name__)


class Committer:
    """Commits offsets with their metadata through the consumer, counted in ``stats``.

    Raises :class:`PartitionsLost` (the group moved on: nothing more may be written) and
    :class:`BrokerUnavailable` (retry later) from the consumer.
    """

    def __init__(self, consumer: ConsumerControl, stats: WorkerStats) -> None:
        self._consumer = consumer
        self._stats = stats

    async def intent(
        self,
        points: Mapping[Partition, CommitPoint],
        held: Mapping[Partition, PartitionState],
    ) -> None:
        """Commit a flush's intent (unchanged offsets, metadata with its ranges) for the
        partitions still ``held``: the fence before the write."""
        await self._commit({p: c for p, c in points.items() if p in held})

    async def progress(
        self,
        points: Mapping[Partition, CommitPoint],
        held: Mapping[Partition, PartitionState],
    ) -> None:
        """Commit the offsets past what is stored for the partitions still ``held``; each
        partition's state remembers its last commit."""
        selected = {p: c for p, c in points.items() if p in held}
        await self._commit(selected)
        for p, point in selected.items():
            held[p].committed = point

    async def settle(self, points: Mapping[Partition, CommitPoint]) -> None:
        """Commit the read positions of partitions being taken over (not held yet)."""
        await self._commit(dict(points))

    async def _commit(self, selected: dict[Partition, CommitPoint]) -> None:
        if not selected:
            return
        try:
            await self._consumer.commit(selected)
        except PartitionsLost:
            self._stats.partitions_lost += 1
            raise
        except BrokerUnavailable:
            self._stats.commit_failures += 1
            raise
        self._stats.commits += 1
