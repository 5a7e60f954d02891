"""Alert rules inside the stream workers: one engine per partition, fleet rules on one leader.

Placement (docs/alerting.md): per-scope rules (proxy, pool x region, pool) evaluate as the
owning worker closes windows; region and fleet rules evaluate once per window from ClickHouse on
the one worker that holds partition 0 (:class:`~stream_app.worker.service.PartitionLeader`).

- **One engine per partition.** A pool lives in one partition (producers key envelopes by pool),
  and each partition's aggregator closes its windows at its own watermark. So each held partition
  gets its own :class:`~stream_app.alerting.placement.ScopeRuleRunner`: every window an engine
  evaluates is complete for the scopes it judges, and a scope missing from it really was silent.
  After each cycle a partition's engine also evaluates, as empty, the windows its watermark has
  closed without traffic, so absence rules keep counting for a silent pool.
- **Hand-over.** The engine state of a partition (pending and firing alerts, absence counts,
  baselines) is saved in ``alerting_state`` as ``<app_id>-scope-p<N>`` every
  ``state_save_interval_s``, and when the worker gives the partition up (the worker awaits it
  before leaving the group). The worker taking the partition over restores it before any of its
  windows closes, so an alert firing before a rebalance neither fires again nor is forgotten.
- **Complete fleet windows.** Fleet rules evaluate a window once every partition's committed
  watermark has passed it (``completeness``, from
  :class:`~stream_app.worker.group_watermarks.GroupWatermarks`), so a hand-over or a lagging
  partition cannot flip a fleet alert.
- **Pipeline health.** Each partition engine holds its rules while its own partition is stale or
  the sink is down; one health engine per worker (the worker's most-behind partition) raises
  the ``PipelineDegraded`` alert, the partition engines' copies are dropped.
- **Grouping across partitions.** The partition engines' own notifications are dropped; their
  alert events feed one worker-wide :class:`~stream_app.core.rules.grouping.Grouper`, so
  simultaneous breaches in pools of different partitions become one notification per group and
  worker (Alertmanager regroups across workers by its own route).

Errors: :meth:`WorkerAlerting.start` raises :class:`~stream_app.alerting.errors.RulesFileError`
for an invalid rules file; storage trouble while saving or restoring state is logged and counted
(``state_failures``), and the partition runs on with fresh state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from schemas.rules import RuleSet, empty_rule_set
from stream_app.alerting.dead_letter import JsonlDeadLetter
from stream_app.alerting.dispatcher import AlertDispatcher, AlertSink
from stream_app.alerting.engine_state import EngineStateStore
from stream_app.alerting.errors import AlertingError
from stream_app.alerting.history import RuleAuditWriter
from stream_app.alerting.metrics import AlertingMetrics
from stream_app.alerting.pipeline_alert import WithoutPipelineAlert
from stream_app.alerting.placement import (
    LOCAL_LEVELS,
    Completeness,
    FleetRuleRunner,
    LeaderGate,
    ScopeRuleRunner,
    publish_output,
    wall_ms,
)
from stream_app.alerting.rules_watcher import RulesFileWatcher
from stream_app.alerting.service import build_sinks
from stream_app.alerting.settings import AlertingSettings
from stream_app.alerting.window_reader import ClickHouseWindowReader
from stream_app.core.rules import EngineOptions, PipelineStatus, RuleEngine
from stream_app.core.rules.errors import StateError
from stream_app.core.rules.grouping import Grouper
from stream_app.settings import PipelineSettings
from stream_app.storage.client import StorageClient
from stream_app.storage.queries import StorageQueries
from stream_app.worker.alert_partition import GroupedPublisher, PartitionRules
from stream_app.worker.cycle import PartitionWindows

__all__ = ["StatusProbe", "WorkerAlerting"]

logger = logging.getLogger(__name__)

StatusProbe = Callable[[int | None], PipelineStatus]
"""The pipeline's status for one partition (``None``: the worker's most-behind partition)."""


class WorkerAlerting:
    """Alert rules, delivery and hot reload for one stream worker (see the module docstring)."""

    def __init__(
        self,
        settings: AlertingSettings,
        pipeline: PipelineSettings,
        *,
        rules_file: Path,
        app_id: str,
        storage: StorageClient,
        database: str,
        leader: LeaderGate,
        status: StatusProbe,
        metrics: AlertingMetrics | None = None,
        sinks: Sequence[AlertSink] = (),
        completeness: Completeness | None = None,
        clock_ms: Callable[[], int] = wall_ms,
        state_save_interval_s: float = 10.0,
        status_interval_s: float = 1.0,
        tick_max_sleep_s: float = 1.0,
    ) -> None:
        self.settings = settings
        self.rules_file = rules_file
        self.metrics = metrics or AlertingMetrics()
        self.app_id = app_id
        self._pipeline = pipeline
        self._status = status
        self._clock_ms = clock_ms
        self._save_interval_s = state_save_interval_s
        self._status_interval_s = status_interval_s
        self._tick_max_sleep_s = tick_max_sleep_s
        self.rules: RuleSet = empty_rule_set(str(rules_file))
        self.dispatcher = AlertDispatcher(
            [*build_sinks(settings, self.metrics, storage=storage, database=database), *sinks],
            self.metrics,
            queue_size=settings.queue_size,
            retry=settings.retry_policy(),
            dead_letter=JsonlDeadLetter(settings.dead_letter_path),
        )
        self._options = EngineOptions(
            window_s=pipeline.window_s,
            proxy_window_s=pipeline.proxy_window_s,
            generator_url=settings.generator_url,
        )
        self._scope_options = self._options.model_copy(update={"levels": LOCAL_LEVELS})
        self._quiet = WithoutPipelineAlert(self.dispatcher)
        self.grouper = Grouper(self.rules.grouping)
        self._save_now = asyncio.Event()
        self._store = EngineStateStore(storage, database)
        self.health_runner = ScopeRuleRunner(
            RuleEngine(self.rules, self._scope_options), self.dispatcher, clock_ms
        )
        self.fleet_runner = FleetRuleRunner(
            self.rules,
            self._options,
            self._quiet,
            ClickHouseWindowReader(StorageQueries(storage, database)),
            leader,
            grace_ms=pipeline.grace_ms,
            evaluation_delay_ms=settings.fleet_evaluation_delay_ms,
            state_store=self._store,
            state_name=f"{app_id}-fleet-rules",
            clock_ms=clock_ms,
            completeness=completeness,
        )
        self.watcher = RulesFileWatcher(
            rules_file,
            self._put_in_force,
            self.metrics,
            audit=RuleAuditWriter(storage, database),
            poll_interval_s=settings.rules_poll_interval_s,
        )
        self.partitions: dict[int, PartitionRules] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self.windows_evaluated = 0
        """(partition, window end) pairs evaluated, empty ones included."""
        self.state_failures = 0
        self.states_restored = 0
        self.states_saved = 0

    def state_name(self, partition: int) -> str:
        """The ``alerting_state`` name of one partition's engine."""
        return f"{self.app_id}-scope-p{partition}"

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start delivery, load the rules (RulesFileError when invalid), start the tasks."""
        if self._started:
            return
        await self.dispatcher.start()
        try:
            await self.watcher.load_initial()
        except BaseException:
            await self.dispatcher.close(drain_timeout_s=0.0)
            raise
        self._started = True
        self.health_runner.start_ticks(self._tick_max_sleep_s)
        self.fleet_runner.start_ticks(self._tick_max_sleep_s)
        self.watcher.start()
        self._tasks = [
            asyncio.create_task(self._run_fleet_rules(), name="worker-fleet-rules"),
            asyncio.create_task(self._run_status_reports(), name="worker-pipeline-status"),
            asyncio.create_task(self._run_state_saves(), name="worker-alert-state"),
            asyncio.create_task(self._run_notifications(), name="worker-alert-groups"),
        ]
        logger.info(
            "alerting: %d rule(s) from %s, sinks %s",
            len(self.rules.rules),
            self.rules_file,
            ", ".join(self.dispatcher.sink_names) or "none",
        )

    async def close(self, drain_timeout_s: float = 5.0) -> None:
        """Stop the tasks, save every partition engine's state, deliver what is queued."""
        if not self._started:
            return
        self._started = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.watcher.stop()
        await self.partitions_revoked(set(self.partitions))
        await self.health_runner.stop()
        await self.fleet_runner.stop()
        await self.dispatcher.close(drain_timeout_s)

    # -- partition hand-over (a stream_app.worker.observers.PartitionObserver) ----------------

    async def partitions_assigned(self, partitions: set[int]) -> None:
        """Restore the engines of newly held partitions before any of their windows closes."""
        for partition in sorted(partitions - set(self.partitions)):
            self.partitions[partition] = await self._restore(partition)

    async def partitions_revoked(self, partitions: set[int]) -> None:
        """Save and drop the engines of partitions given up (awaited before they move on)."""
        for partition in sorted(partitions):
            rules = self.partitions.pop(partition, None)
            if rules is None:
                continue
            await rules.runner.stop()
            await self._save(partition, rules)

    async def partitions_lost(self, partitions: set[int]) -> None:
        """Drop the engines of partitions the group moved on without us, unsaved: the next
        owner continues from the last periodic save."""
        for partition in sorted(partitions):
            rules = self.partitions.pop(partition, None)
            if rules is not None:
                await rules.runner.stop()

    async def _restore(self, partition: int) -> PartitionRules:
        state: dict[str, Any] | None = None
        try:
            saved = await asyncio.to_thread(self._store.load, self.state_name(partition))
            if saved is not None:
                state = saved[1]
                engine = RuleEngine(self.rules, self._scope_options, state=state)
        except (AlertingError, StateError) as exc:
            self.state_failures += 1
            state = None
            logger.warning(
                "alerting: partition %d starts with fresh rule state: %s", partition, exc
            )
        if state is None:
            engine = RuleEngine(self.rules, self._scope_options)
        window_ms = {
            False: self._pipeline.window_s * 1000,
            True: self._pipeline.proxy_window_s * 1000,
        }
        rules: PartitionRules  # bound below; the callback runs only once evaluation starts

        def changed() -> None:
            rules.urgent = rules.dirty = True
            self._save_now.set()

        publisher = GroupedPublisher(self._quiet, self.grouper, self._clock_ms, changed)
        rules = PartitionRules(ScopeRuleRunner(engine, publisher, self._clock_ms), window_ms)
        if state is not None:
            rules.resume_from(state)
            self.states_restored += 1
            logger.info("alerting: engine state of partition %d restored", partition)
        if self._started:
            rules.runner.start_ticks(self._tick_max_sleep_s)
        return rules

    async def _save(self, partition: int, rules: PartitionRules) -> None:
        end_ms = max(rules.last_end_ms.values(), default=0)
        try:
            await asyncio.to_thread(
                self._store.save, self.state_name(partition), end_ms, rules.runner.engine.snapshot()
            )
        except AlertingError as exc:
            self.state_failures += 1
            logger.warning("alerting: engine state of partition %d not saved: %s", partition, exc)
            return
        rules.dirty = False
        self.states_saved += 1

    # -- what the worker calls after each cycle -----------------------------------------------

    def on_partition_windows(self, partition: int, closed: PartitionWindows) -> None:
        """Evaluate what one partition closed, then the windows it closed without traffic."""
        if not self._started:
            return
        rules = self.partitions.get(partition)
        if rules is None:  # held before alerting started: no saved state was looked up
            return
        rules.runner.set_pipeline_status(self._status(partition))
        self.windows_evaluated += rules.evaluate(closed)

    # -- rules ----------------------------------------------------------------------------------

    def _put_in_force(self, rule_set: RuleSet) -> None:
        self.rules = rule_set
        self.grouper.configure(rule_set.grouping)
        self.health_runner.replace_rules(rule_set)
        self.fleet_runner.replace_rules(rule_set)
        for rules in self.partitions.values():
            rules.runner.replace_rules(rule_set)

    # -- background tasks ---------------------------------------------------------------------

    async def _run_fleet_rules(self) -> None:
        runner = self.fleet_runner
        window_ms = runner.window_s * 1000
        settle_ms = self._pipeline.grace_ms + self.settings.fleet_evaluation_delay_ms
        while True:
            now = self._clock_ms()
            next_due = runner.due_window_end_ms(now) + window_ms + settle_ms
            await asyncio.sleep(min(max(0.0, (next_due - now) / 1000.0), runner.window_s))
            try:
                await runner.evaluate_due()
            except Exception:
                logger.exception("fleet rule evaluation failed")

    async def _run_status_reports(self) -> None:
        while True:
            await asyncio.sleep(self._status_interval_s)
            try:
                now_ms = self._clock_ms()
                status = self._status(None)
                out = self.health_runner.engine.set_pipeline_status(status, now_ms=now_ms)
                publish_output(out, self.dispatcher)
                out = self.fleet_runner.engine.set_pipeline_status(status, now_ms=now_ms)
                publish_output(out, self._quiet)
            except Exception:
                logger.exception("reporting the pipeline status to the rule engines failed")

    async def _run_notifications(self) -> None:
        while True:
            now = self._clock_ms()
            deadline = self.grouper.next_deadline_ms()
            wait_s = self._tick_max_sleep_s
            if deadline is not None:
                wait_s = min(wait_s, max(0.0, (deadline - now) / 1000.0))
            await asyncio.sleep(wait_s)
            self.flush_notifications()

    def flush_notifications(self) -> int:
        """Deliver the worker-wide groups that are due; returns how many."""
        due = self.grouper.due(self._clock_ms())
        for notification in due:
            self.dispatcher.publish_notification(notification)
        return len(due)

    async def _run_state_saves(self) -> None:
        """Save partitions whose alerts changed state at once, the others every interval."""
        loop = asyncio.get_running_loop()
        next_periodic = loop.time() + self._save_interval_s
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_periodic - loop.time())):
                    await self._save_now.wait()
            self._save_now.clear()
            periodic = loop.time() >= next_periodic
            if periodic:
                next_periodic = loop.time() + self._save_interval_s
            for partition, rules in list(self.partitions.items()):
                due = rules.urgent or (periodic and rules.dirty)
                if due and self.partitions.get(partition) is rules:
                    rules.urgent = False
                    await self._save(partition, rules)
