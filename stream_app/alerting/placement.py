"""Where alert rules evaluate, and the glue between the rule engine and the dispatcher.

- Per-scope rules (levels ``proxy``, ``pool_region``, ``pool``): :class:`ScopeRuleRunner`, in
  the worker that owns the scope. Records are keyed by pool, so one worker holds every window of
  a pool; it evaluates as its windows close (``on_windows_closed``), with no extra I/O.
- Cross-pool rules (levels ``region``, ``fleet``): :class:`FleetRuleRunner`, once per window,
  from ClickHouse, where every worker's partial sums meet. It waits until a window's end +
  grace + ``evaluation_delay_ms`` (the last flushes have landed), reads that window's pool x
  region totals and feeds them to an engine restricted to those levels. Only the leader
  evaluates (:class:`LeaderGate`): the worker holding partition 0 of the requests topic in
  distributed mode, :class:`AlwaysLeader` in the embedded service (one process).

Neither runner ever blocks window processing: engine output goes to
:meth:`~.dispatcher.AlertDispatcher.publish` (``put_nowait``). Only state changes
(``EngineOutput.events``) and grouped notifications (``EngineOutput.notifications``, for chat
webhooks) are published; the engine's re-sends are not: the Alertmanager sink re-sends firing
alerts itself, and the other consumers want state changes, not repeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from schemas.aggregates import WindowAggregate
from schemas.alerts import AlertEvent
from schemas.rules import RuleSet, ScopeLevel
from stream_app.alerting.errors import AlertingError
from stream_app.alerting.window_reader import (
    WindowSource,
)
from stream_app.core.rules import engine as rule_engine
from stream_app.core.rules.grouping import Notification
from stream_app.core.rules.options import EngineOptions
from stream_app.core.rules.output import EngineOutput
from stream_app.core.rules.pipeline import PipelineStatus

logger = logging.getLogger(__name__)

LOCAL_LEVELS: frozenset[ScopeLevel] = frozenset({"proxy", "pool_region", "pool"})
"""Levels a worker evaluates for the pools it owns."""
FLEET_LEVELS: frozenset[ScopeLevel] = frozenset({"region", "fleet"})
"""Levels spanning pools: evaluated once, by the leader, from ClickHouse."""


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class AlertPublisher(Protocol):
    """What the runners hand engine output to (the dispatcher)."""

    def publish(self, event: AlertEvent) -> None: ...

    def publish_notification(self, notification: Notification) -> None: ...


class LeaderGate(Protocol):
    """Whether this process is the one that evaluates fleet-wide rules right now."""

    def is_leader(self) -> bool: ...


class AlwaysLeader:
    """The embedded service: the only process is the leader."""

    def is_leader(self) -> bool:
        return True


def publish_output(out: EngineOutput, publisher: AlertPublisher) -> int:
    """Publish the state changes and grouped notifications of one engine call; returns how
    many state changes."""
    for event in out.events:
        publisher.publish(event)
    for notification in out.notifications:
        publisher.publish_notification(notification)
    return len(out.events)


class _EngineRunner:
    def __init__(
        self,
        engine: rule_engine.RuleEngine,
        publisher: AlertPublisher,
        clock_ms: Callable[[], int],
    ) -> None:
        self.engine = engine
        self._publisher = publisher
        self._clock_ms = clock_ms
        self._timer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def replace_rules(self, rule_set: RuleSet) -> None:
        """Hot reload (the :class:`~.rules_watcher.RulesFileWatcher` applier)."""
        publish_output(
            self.engine.replace_rules(rule_set, now_ms=self._clock_ms()), self._publisher
        )
        self._wake.set()

    def set_pipeline_status(self, status: PipelineStatus) -> None:
        """Hand the pipeline's health to the engine (publishing what changes)."""
        publish_output(
            self.engine.set_pipeline_status(status, now_ms=self._clock_ms()), self._publisher
        )

    def tick(self) -> None:
        """Wall-clock housekeeping of the engine (silences ending, pipeline health ...)."""
        publish_output(self.engine.tick(self._clock_ms()), self._publisher)

    async def _run_ticks(self, max_sleep_s: float) -> None:
        while True:
            deadline = self.engine.next_deadline_ms()
            now = self._clock_ms()
            sleep_s = max_sleep_s if deadline is None else max(0.0, (deadline - now) / 1000.0)
            self._wake.clear()
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation that
            # arrives as the event is set (replace_rules), and stop() would hang.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(sleep_s, max_sleep_s)):
                    await self._wake.wait()
            self.tick()

    def start_ticks(self, max_sleep_s: float = 1.0) -> None:
        """Run :meth:`tick` whenever the engine has timed work (at least every max_sleep_s)."""
        if self._timer is None:
            self._timer = asyncio.create_task(self._run_ticks(max_sleep_s), name="rule-ticks")

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None


class ScopeRuleRunner(_EngineRunner):
    """Per-scope rules of the pools this worker owns, evaluated as windows close."""

    def on_windows_closed(
        self,
        aggregates: Sequence[WindowAggregate],
        *,
        window_end_ms: int,
        per_proxy: bool = False,
    ) -> int:
        """Evaluate one closed window (call it also with no aggregates); never blocks."""
        out = self.engine.evaluate_window(
            aggregates, window_end_ms=window_end_ms, now_ms=self._clock_ms(), per_proxy=per_proxy
        )
        return publish_output(out, self._publisher)

    def listener(self, aggregates: Sequence[WindowAggregate]) -> None:
        """A window listener (embedded pipeline, Faust agent): every closed window end of the
        batch, oldest first, pool x region and per-proxy streams apart."""
        by_end: dict[tuple[bool, int], list[WindowAggregate]] = {}
        for agg in aggregates:
            key = (agg.scope.proxy_id is not None, agg.window_end_ms)
            by_end.setdefault(key, []).append(agg)
        for per_proxy, end_ms in sorted(by_end):
            self.on_windows_closed(
                by_end[(per_proxy, end_ms)], window_end_ms=end_ms, per_proxy=per_proxy
            )


Completeness = Callable[[], Awaitable[int | None]]
"""How far every source partition's windows are stored (ms; None: no partition known yet).
Raises an error whose ``retriable`` is True when it cannot be known right now (the worker's
:class:`~stream_app.worker.errors.BrokerUnavailable`: every package's errors carry ``retriable``,
docs/architecture.md "Errors"); any other error propagates."""


class StateStore(Protocol):
    def save(self, name: str, window_end_ms: int, state: dict[str, Any]) -> None: ...

    def load(self, name: str) -> tuple[int, dict[str, Any]] | None: ...


class FleetRuleRunner(_EngineRunner):
    """Cross-pool rules, once per window, from ClickHouse, on the leader only.

    The engine is restricted to :data:`FLEET_LEVELS`. With a ``state_store`` the runner saves
    the engine snapshot after each evaluated window and, whenever it becomes leader, restores the
    latest snapshot first: a failover does not re-fire alerts the previous leader had fired, nor
    evaluate a window twice (two processes never both publish a window's alerts).

    With ``completeness`` (how far every partition's windows are stored, e.g. the workers'
    committed watermarks) a settled window is evaluated only once it is complete everywhere, so
    a partition changing hands or lagging cannot make a fleet window look better or worse than
    it was; after ``max_incomplete_wait_ms`` past settling it is evaluated anyway (counted in
    ``incomplete_windows``), and the pipeline-health status then holds the rate rules.
    """

    def __init__(
        self,
        rules: RuleSet,
        options: EngineOptions,
        publisher: AlertPublisher,
        source: WindowSource,
        leader: LeaderGate,
        *,
        grace_ms: int,
        evaluation_delay_ms: int = 2_000,
        max_catch_up_windows: int = 6,
        state_store: StateStore | None = None,
        state_name: str = "fleet-rules",
        clock_ms: Callable[[], int] = wall_ms,
        completeness: Completeness | None = None,
        max_incomplete_wait_ms: int = 30_000,
    ) -> None:
        self._options = options.model_copy(update={"levels": FLEET_LEVELS})
        self._completeness = completeness
        self._max_incomplete_wait_ms = max_incomplete_wait_ms
        self.incomplete_windows = 0
        super().__init__(rule_engine.RuleEngine(rules, self._options), publisher, clock_ms)
        self._rules = rules
        self._source = source
        self._leader = leader
        self.window_s = options.window_s
        self._window_ms = options.window_s * 1000
        self._settle_ms = grace_ms + evaluation_delay_ms
        self._max_catch_up = max_catch_up_windows
        self._store = state_store
        self._state_name = state_name
        self._was_leader = False
        self.last_window_end_ms: int | None = None
        self.read_failures = 0
        self.save_failures = 0
        self.windows_evaluated = 0
        self.restores = 0

    def replace_rules(self, rule_set: RuleSet) -> None:
        self._rules = rule_set
        super().replace_rules(rule_set)

    def due_window_end_ms(self, now_ms: int) -> int:
        """The newest window end whose data has settled at ``now_ms``."""
        settled = now_ms - self._settle_ms
        return settled - settled % self._window_ms

    async def _take_over(self) -> None:
        """Newly leader: continue from the latest saved state (if any)."""
        if self._store is None:
            return
        saved = await asyncio.to_thread(self._store.load, self._state_name)
        if saved is None:
            return
        window_end_ms, state = saved
        self.engine = rule_engine.RuleEngine(self._rules, self._options, state=state)
        self.last_window_end_ms = window_end_ms
        self.restores += 1
        logger.info("fleet rules: restored engine state of window %d", window_end_ms)

    async def evaluate_due(self) -> int:
        """Evaluate every settled window not evaluated yet (leader only); returns events."""
        leader = self._leader.is_leader()
        if not leader:
            self._was_leader = False
            return 0
        if not self._was_leader:
            try:
                await self._take_over()
            except AlertingError as exc:
                logger.warning("fleet rules: cannot restore state yet: %s", exc)
                return 0
            self._was_leader = True
        now = self._clock_ms()
        due = self.due_window_end_ms(now)
        complete_through = due
        if self._completeness is not None:
            try:
                closed_ms = await self._completeness()
            except Exception as exc:
                if not getattr(exc, "retriable", False):
                    raise
                self.read_failures += 1
                if self.read_failures == 1 or self.read_failures % 20 == 0:
                    logger.warning("fleet rules: completeness unknown, waiting: %s", exc)
                return 0
            if closed_ms is not None:
                complete_through = min(due, closed_ms - closed_ms % self._window_ms)
                overdue = self.due_window_end_ms(now - self._max_incomplete_wait_ms)
                due = max(complete_through, min(due, overdue))
        first = due - (self._max_catch_up - 1) * self._window_ms
        if self.last_window_end_ms is not None:
            first = max(first, self.last_window_end_ms + self._window_ms)
        published = 0
        for end_ms in range(first, due + 1, self._window_ms):
            try:
                aggregates = await asyncio.to_thread(self._source.read, end_ms, self.window_s)
            except AlertingError as exc:
                self.read_failures += 1
                if self.read_failures == 1 or self.read_failures % 20 == 0:
                    logger.warning("fleet rules: window %d not readable yet: %s", end_ms, exc)
                break
            if not self._leader.is_leader():
                break  # lost leadership while reading: the new leader takes this window
            if end_ms > complete_through:
                self.incomplete_windows += 1
            out = self.engine.evaluate_window(aggregates, window_end_ms=end_ms, now_ms=now)
            published += publish_output(out, self._publisher)
            self.last_window_end_ms = end_ms
            self.windows_evaluated += 1
            await self._save(end_ms)
        return published

    async def _save(self, window_end_ms: int) -> None:
        if self._store is None:
            return
        try:
            await asyncio.to_thread(
                self._store.save, self._state_name, window_end_ms, self.engine.snapshot()
            )
        except AlertingError as exc:
            self.save_failures += 1
            if self.save_failures == 1 or self.save_failures % 20 == 0:
                logger.warning("fleet rules: engine state not saved: %s", exc)

    async def run(self) -> None:
        """Evaluate each window as it settles, until cancelled (the embedded-mode task)."""
        while True:
            now = self._clock_ms()
            next_due = self.due_window_end_ms(now) + self._window_ms + self._settle_ms
            await asyncio.sleep(max(0.0, (next_due - now) / 1000.0))
            try:
                await self.evaluate_due()
            except Exception:
                logger.exception("fleet rule evaluation failed")
