"""One held partition's alert rules: its engine, the window ends it has evaluated, its saves.

:class:`PartitionRules` evaluates what the partition's aggregator closed in a cycle and then,
as empty, every window its watermark closed without traffic (so absence rules keep counting
for a silent pool). :class:`GroupedPublisher` is the engine's publisher: alert events are
delivered and fed to the worker-wide grouper; the engine's own notifications are dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from schemas.alerts import AlertEvent
from stream_app.alerting.pipeline_alert import WithoutPipelineAlert
from stream_app.alerting.placement import ScopeRuleRunner
from stream_app.core.rules import PIPELINE_RULE_ID
from stream_app.core.rules.grouping import Grouper, Notification
from stream_app.worker.cycle import PartitionWindows

__all__ = ["MAX_EMPTY_WINDOWS", "GroupedPublisher", "PartitionRules"]

MAX_EMPTY_WINDOWS = 360
"""At most this many trailing empty windows are evaluated at once (after a long silence)."""


class GroupedPublisher:
    """Delivers a partition engine's events (not the pipeline alert) and regroups them
    worker-wide; ``on_change`` hears of every alert state change."""

    def __init__(
        self,
        publisher: WithoutPipelineAlert,
        grouper: Grouper,
        clock_ms: Callable[[], int],
        on_change: Callable[[], None],
    ) -> None:
        self._publisher = publisher
        self._grouper = grouper
        self._clock_ms = clock_ms
        self._on_change = on_change

    def publish(self, event: AlertEvent) -> None:
        self._publisher.publish(event)
        if event.labels.get("rule_id") != PIPELINE_RULE_ID:
            self._grouper.add(event, self._clock_ms())
            self._on_change()

    def publish_notification(self, notification: Notification) -> None:
        return None  # regrouped worker-wide instead


class PartitionRules:
    """The rule engine of one partition and what it has evaluated."""

    def __init__(self, runner: ScopeRuleRunner, window_ms: Mapping[bool, int]) -> None:
        self.runner = runner
        self._window_ms = dict(window_ms)
        """Window size per stream (``True``: per-proxy windows)."""
        self.last_end_ms: dict[bool, int] = {}
        """Last window end evaluated, per stream."""
        self.dirty = False
        """Changed since the last save."""
        self.urgent = False
        """An alert changed state: save at once, so even a crash hands the change over."""

    def resume_from(self, state: Mapping[str, Any]) -> None:
        """Continue after the window ends a saved engine state had evaluated."""
        ends = state.get("last_window_end_ms", {})
        for stream, per_proxy in (("scopes", False), ("proxies", True)):
            if isinstance(ends.get(stream), int):
                self.last_end_ms[per_proxy] = ends[stream]

    def evaluate(self, closed: PartitionWindows) -> int:
        """Evaluate one cycle's windows, then the empty ones; returns window ends evaluated."""
        evaluated = 0
        if closed.windows:
            self.runner.listener(closed.windows)
            self.dirty = True
            ends = {(a.scope.proxy_id is not None, a.window_end_ms) for a in closed.windows}
            evaluated += len(ends)
            for per_proxy, end_ms in ends:
                if end_ms > self.last_end_ms.get(per_proxy, end_ms - 1):
                    self.last_end_ms[per_proxy] = end_ms
        if closed.closed_through_ms is not None:
            evaluated += self._evaluate_empty(closed.closed_through_ms)
        return evaluated

    def _evaluate_empty(self, closed_through_ms: int) -> int:
        evaluated = 0
        for per_proxy, window_ms in self._window_ms.items():
            last = self.last_end_ms.get(per_proxy)
            if last is None:
                continue  # nothing seen yet: no scope to miss
            through = closed_through_ms - closed_through_ms % window_ms
            ends = range(last + window_ms, through + 1, window_ms)
            for end_ms in ends[-MAX_EMPTY_WINDOWS:]:
                self.runner.on_windows_closed([], window_end_ms=end_ms, per_proxy=per_proxy)
                self.dirty = True
                evaluated += 1
            if ends:
                self.last_end_ms[per_proxy] = ends[-1]
        return evaluated
