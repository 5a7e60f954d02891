"""Alerting inside the embedded service: rules evaluated as the in-process pipeline closes windows.

:class:`EmbeddedAlerting` wires, from :class:`~stream_app.alerting.settings.AlertingSettings`,
the pipeline and its ClickHouse client:

- the :class:`~stream_app.alerting.dispatcher.AlertDispatcher` with the sinks the settings ask
  for (Kafka, Alertmanager, webhook, ClickHouse ``alert_history``: on by default) plus any extra
  sink given (a test's recorder) and, with ``console``, a
  :class:`~stream_app.embedded.alert_console.ConsoleAlertSink` (the demo's alert lines);
- a :class:`~stream_app.alerting.placement.ScopeRuleRunner` (proxy, pool x region and pool
  rules), registered as a pipeline listener: each closed window (and per-proxy window) is
  evaluated at once;
- a :class:`~stream_app.alerting.placement.FleetRuleRunner` (region and fleet rules) with
  :class:`~stream_app.alerting.placement.AlwaysLeader`, reading the windows back from ClickHouse.
  It is woken whenever windows close (in this one process every closed window's partial sums
  were written before it closed) and otherwise once per window, after window end + grace +
  ``fleet_evaluation_delay_ms``;
- the :class:`~stream_app.alerting.rules_watcher.RulesFileWatcher` (hot reload, audited in
  ``rule_audit``), which puts each valid rules file in force in both runners;
- the engines' tick tasks (group waits, re-sends, silences ending);
- pipeline health: every ``status_interval_s`` and before each evaluation the engines get a
  :class:`~stream_app.core.rules.PipelineStatus` from the pipeline
  (:mod:`stream_app.embedded.alert_health`). Both engines hold their rules while degraded; only
  the per-scope engine raises the one ``PipelineDegraded`` alert.

Engine state survives restarts: the fleet runner saves its snapshot after every window (its own
mechanism) and :meth:`EmbeddedAlerting.close` saves the per-scope engine's, which
:meth:`EmbeddedAlerting.start` restores (``alerting_state``, names ``<name>-scope-rules`` and
``<name>-fleet-rules``), so a restart neither re-fires nor forgets firing alerts.

Errors: :meth:`EmbeddedAlerting.start` raises
:class:`~stream_app.alerting.errors.RulesFileError` (poison: fix the file) when the rules file
is invalid; nothing else escapes. Storage trouble while restoring or saving state is logged and
counted (``state_failures``): the service runs on with fresh state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from schemas.aggregates import WindowAggregate
from schemas.rules import Rule, RuleSet, empty_rule_set
from stream_app.alerting.dead_letter import JsonlDeadLetter
from stream_app.alerting.dispatcher import AlertDispatcher, AlertSink
from stream_app.alerting.engine_state import EngineStateStore
from stream_app.alerting.errors import AlertingError
from stream_app.alerting.history import RuleAuditWriter
from stream_app.alerting.metrics import AlertingMetrics
from stream_app.alerting.placement import (
    LOCAL_LEVELS,
    AlwaysLeader,
    FleetRuleRunner,
    ScopeRuleRunner,
    publish_output,
    wall_ms,
)
from stream_app.alerting.rules_watcher import RulesFileWatcher
from stream_app.alerting.service import build_sinks
from stream_app.alerting.settings import AlertingSettings
from stream_app.alerting.window_reader import ClickHouseWindowReader
from stream_app.core.rules import EngineOptions, RuleEngine
from stream_app.core.rules.errors import StateError
from stream_app.embedded.alert_console import ConsoleAlertSink
from stream_app.embedded.alert_health import PipelineProbe, WithoutPipelineAlert
from stream_app.embedded.pipeline import EmbeddedPipeline
from stream_app.storage.client import StorageClient
from stream_app.storage.queries import StorageQueries

logger = logging.getLogger(__name__)

BUNDLED_DEMO_RULES = Path(__file__).with_name("rules.demo.yaml")
"""The demo's rules (a copy of ``config/rules.demo.yaml``): they fire on the demo fleet's
incidents."""


class EmbeddedAlerting:
    """Alert rules, delivery and hot reload for one :class:`EmbeddedPipeline`."""

    def __init__(
        self,
        settings: AlertingSettings,
        pipeline: EmbeddedPipeline,
        *,
        storage: StorageClient,
        database: str,
        rules_file: Path,
        metrics: AlertingMetrics,
        sinks: Sequence[AlertSink] = (),
        console: TextIO | None = None,
        clock_ms: Callable[[], int] = wall_ms,
        name: str = "embedded",
        status_interval_s: float = 1.0,
        tick_max_sleep_s: float = 1.0,
    ) -> None:
        if status_interval_s <= 0 or tick_max_sleep_s <= 0:
            raise ValueError("status_interval_s and tick_max_sleep_s must be > 0")
        self.settings = settings
        self.rules_file = rules_file
        self.metrics = metrics
        self._pipeline = pipeline
        self._clock_ms = clock_ms
        self._status_interval_s = status_interval_s
        self._tick_max_sleep_s = tick_max_sleep_s
        self.rules: RuleSet = empty_rule_set(str(rules_file))
        extra = list(sinks)
        if console is not None:
            extra.append(ConsoleAlertSink(console, rule_of=self.rule))
        self.dispatcher = AlertDispatcher(
            [*build_sinks(settings, metrics, storage=storage, database=database), *extra],
            metrics,
            queue_size=settings.queue_size,
            retry=settings.retry_policy(),
            dead_letter=JsonlDeadLetter(settings.dead_letter_path),
        )
        psettings = pipeline.settings
        options = EngineOptions(
            window_s=psettings.window_s,
            proxy_window_s=psettings.proxy_window_s,
            generator_url=settings.generator_url,
        )
        self._scope_options = options.model_copy(update={"levels": LOCAL_LEVELS})
        self.scope_runner = ScopeRuleRunner(
            RuleEngine(self.rules, self._scope_options), self.dispatcher, clock_ms
        )
        self._store = EngineStateStore(storage, database)
        self.scope_state_name = f"{name}-scope-rules"
        self._fleet_publisher = WithoutPipelineAlert(self.dispatcher)
        self.fleet_runner = FleetRuleRunner(
            self.rules,
            options,
            self._fleet_publisher,
            ClickHouseWindowReader(StorageQueries(storage, database)),
            AlwaysLeader(),
            grace_ms=psettings.grace_ms,
            evaluation_delay_ms=settings.fleet_evaluation_delay_ms,
            state_store=self._store,
            state_name=f"{name}-fleet-rules",
            clock_ms=clock_ms,
        )
        self.watcher = RulesFileWatcher(
            rules_file,
            self._put_in_force,
            metrics,
            audit=RuleAuditWriter(storage, database),
            poll_interval_s=settings.rules_poll_interval_s,
        )
        self.probe = PipelineProbe(pipeline)
        self._windows_closed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._listening = False
        self._started = False
        self.last_scope_window_end_ms: int | None = None
        self.fleet_rules_idle = False
        """True while the fleet-rules task waits for windows to close (diagnostics, tests)."""
        self.state_failures = 0

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start delivery, restore state, load the rules (RulesFileError when invalid), listen
        to the pipeline and start the background tasks. Call from the pipeline's event loop."""
        if self._started:
            return
        await self.dispatcher.start()
        try:
            await self._restore_scope_state()
            await self.watcher.load_initial()
        except BaseException:
            await self.dispatcher.close(drain_timeout_s=0.0)
            raise
        if not self._listening:
            self._pipeline.add_listener(self._on_windows, per_proxy=True)
            self._listening = True
        self._started = True
        self.report_pipeline_status()
        self.scope_runner.start_ticks(self._tick_max_sleep_s)
        self.fleet_runner.start_ticks(self._tick_max_sleep_s)
        self.watcher.start()
        self._tasks = [
            asyncio.create_task(self._run_fleet_rules(), name="embedded-fleet-rules"),
            asyncio.create_task(self._run_status_reports(), name="embedded-pipeline-status"),
        ]
        logger.info(
            "alerting: %d rule(s) from %s, sinks %s",
            len(self.rules.rules),
            self.rules_file,
            ", ".join(self.dispatcher.sink_names) or "none",
        )

    async def close(self, drain_timeout_s: float = 5.0) -> None:
        """Stop the tasks, save the per-scope engine state and deliver what is queued."""
        if not self._started:
            return
        self._started = False
        for task in self._tasks:
            task.cancel()
        # gather, not "suppress(CancelledError): await task": a cancellation of close() itself
        # must not be swallowed.
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.watcher.stop()
        await self.scope_runner.stop()
        await self.fleet_runner.stop()
        await self._save_scope_state()
        await self.dispatcher.close(drain_timeout_s)

    # -- what the pipeline and the watcher call -----------------------------------------------

    def _put_in_force(self, rule_set: RuleSet) -> None:
        """The watcher's applier: both engines switch to ``rule_set`` at once."""
        self.rules = rule_set
        self.scope_runner.replace_rules(rule_set)
        self.fleet_runner.replace_rules(rule_set)

    def rule(self, rule_id: str) -> Rule | None:
        """The rule with ``rule_id`` among the rules in force."""
        return self.rules.rule(rule_id)

    def _on_windows(self, aggregates: Sequence[WindowAggregate]) -> None:
        if not self._started:
            return
        self.report_pipeline_status()
        self.scope_runner.listener(aggregates)
        ends = [a.window_end_ms for a in aggregates if a.scope.proxy_id is None]
        if ends:
            self.last_scope_window_end_ms = max(ends)
            self._windows_closed.set()

    def report_pipeline_status(self) -> None:
        """Hand the pipeline's current health to both engines (publishing what changes)."""
        now_ms = self._clock_ms()
        status = self.probe.status(now_ms)
        scope_out = self.scope_runner.engine.set_pipeline_status(status, now_ms=now_ms)
        publish_output(scope_out, self.dispatcher)
        fleet_out = self.fleet_runner.engine.set_pipeline_status(status, now_ms=now_ms)
        publish_output(fleet_out, self._fleet_publisher)

    def transitions(self) -> tuple[int, int]:
        """(alerts fired, alerts resolved) by both engines since start."""
        scope, fleet = self.scope_runner.engine.stats, self.fleet_runner.engine.stats
        return (
            scope.alerts_fired + fleet.alerts_fired,
            scope.alerts_resolved + fleet.alerts_resolved,
        )

    def tick(self) -> None:
        """Run both engines' wall-clock housekeeping now (the tick tasks do it on their own)."""
        self.scope_runner.tick()
        self.fleet_runner.tick()

    # -- background tasks ---------------------------------------------------------------------

    async def _run_fleet_rules(self) -> None:
        runner = self.fleet_runner
        window_ms = runner.window_s * 1000
        settle_ms = self._pipeline.settings.grace_ms + self.settings.fleet_evaluation_delay_ms
        while True:
            now = self._clock_ms()
            next_due = runner.due_window_end_ms(now) + window_ms + settle_ms
            timeout_s = min(max(0.0, (next_due - now) / 1000.0), runner.window_s)
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation that
            # arrives as the event is set, and close() would wait for this task forever.
            self.fleet_rules_idle = True
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self._windows_closed.wait()
            self.fleet_rules_idle = False
            self._windows_closed.clear()
            try:
                await runner.evaluate_due()
            except Exception:
                logger.exception("fleet rule evaluation failed")

    async def _run_status_reports(self) -> None:
        while True:
            await asyncio.sleep(self._status_interval_s)
            try:
                self.report_pipeline_status()
            except Exception:
                logger.exception("reporting the pipeline status to the rule engines failed")

    # -- per-scope engine state ---------------------------------------------------------------

    async def _restore_scope_state(self) -> None:
        try:
            saved = await asyncio.to_thread(self._store.load, self.scope_state_name)
        except AlertingError as exc:
            self.state_failures += 1
            logger.warning("alerting: per-scope engine state not restored: %s", exc)
            return
        if saved is None:
            return
        window_end_ms, state = saved
        try:
            engine = RuleEngine(self.rules, self._scope_options, state=state)
        except StateError as exc:
            self.state_failures += 1
            logger.warning(
                "alerting: saved per-scope engine state unusable, starting fresh: %s", exc
            )
            return
        self.scope_runner.engine = engine
        self.last_scope_window_end_ms = window_end_ms
        logger.info("alerting: per-scope engine state of window %d restored", window_end_ms)

    async def _save_scope_state(self) -> None:
        end_ms = self.last_scope_window_end_ms or 0
        snapshot = self.scope_runner.engine.snapshot()
        try:
            await asyncio.to_thread(self._store.save, self.scope_state_name, end_ms, snapshot)
        except AlertingError as exc:
            self.state_failures += 1
            logger.warning("alerting: per-scope engine state not saved: %s", exc)


def demo_rules_file(settings: AlertingSettings) -> Path:
    """The rules file of the demo: the configured one, else the bundled demo rules."""
    return settings.rules_file or BUNDLED_DEMO_RULES


__all__ = ["BUNDLED_DEMO_RULES", "EmbeddedAlerting", "demo_rules_file"]
