"""The idle rule's clock per partition: wall time only as far as the input confirms it.

The aggregator closes the windows of a quiet stream by the idle rule: after ``idle_timeout_ms``
of wall time without newer events the watermark follows the wall clock. A broker outage (or a
paused partition) looks exactly like a quiet stream, and the events delayed by it would then be
judged late. So the worker feeds the aggregator a clock held at ``last fetch response +
idle_timeout``, does not count idle time while no fetch response came for ``broker_stall_ms``,
and discards the idle time counted before such a stall once input resumes.
"""

from __future__ import annotations

from stream_app.worker.kafka_consumer import ConsumerControl
from stream_app.worker.partitions import PartitionState

__all__ = ["IdleClock"]


class IdleClock:
    """``clock(state, now_ms)``: the time to hand a partition's aggregator (see module doc)."""

    def __init__(self, consumer: ConsumerControl, *, idle_ms: int, stall_ms: int) -> None:
        self._consumer = consumer
        self._idle_ms = idle_ms
        self._stall_ms = stall_ms

    def clock(self, state: PartitionState, now_ms: int) -> int:
        fetched = self._consumer.last_fetch_ms(state.partition)
        stalled = fetched is None or now_ms - fetched > self._stall_ms
        if stalled or state.input_stalled:
            state.aggregator.defer_idle(now_ms)
        state.input_stalled = stalled
        if fetched is None:
            return now_ms
        return min(now_ms, fetched + self._idle_ms)
