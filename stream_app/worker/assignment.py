"""The state of one assignment of the requests topic's partitions to this worker.

:class:`~stream_app.worker.handover.Handover` builds one when partitions are taken over and
discards it when they are given up or lost; the worker's record path and cycles read and
change only the current one. The story of a cycle: docs/architecture.md, "The flush cycle".
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field

from stream_app.worker.cycle import Cycle
from stream_app.worker.partitions import Partition, PartitionState

__all__ = ["Assignment"]


@dataclass
class Assignment:
    """Partitions held, what their records were since the last cycle, the pending cycle."""

    partitions: dict[Partition, PartitionState] = field(default_factory=dict)
    record_times: list[tuple[int, int]] = field(default_factory=list)
    """(events, mean event time) of every record aggregated since the last cycle was taken."""
    cycle: Cycle | None = None
    """The cycle taken and not completed yet (retried until it completes)."""
    lag: dict[Partition, int] = field(default_factory=dict)
    """Records behind the end of the log per partition, when last looked."""

    @property
    def empty(self) -> bool:
        return not self.partitions and self.cycle is None

    def take_record_times(self) -> list[tuple[int, int]]:
        times, self.record_times = self.record_times, []
        return times

    def drop(self, partitions: Set[Partition]) -> None:
        """Forget ``partitions`` (given up while the others stay held)."""
        for p in partitions:
            self.partitions.pop(p, None)
            self.lag.pop(p, None)
        if not self.partitions:
            self.record_times = []

    def extended(self, states: Mapping[Partition, PartitionState]) -> Assignment:
        """The assignment of the partitions held here and of ``states`` taken over."""
        return Assignment(
            partitions={**self.partitions, **states},
            record_times=self.record_times,
            cycle=self.cycle,
            lag=dict(self.lag),
        )
