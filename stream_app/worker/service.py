"""One running stream worker: storage, topics, the Faust app, the cycle loop, ``/metrics``.

:class:`WorkerService` is what ``proxywhirl-metrics worker`` runs (:func:`run_worker`) and what
tests start in-process. ``start()`` migrates storage, creates missing topics (when configured),
starts the Faust app and the cycle loop; ``stop()`` stores and commits what the worker holds,
then stops the app (leaving the consumer group, so its partitions move to the other workers).
The service ends by itself when the Faust app crashes or storage rejects a flush for good
(:class:`~stream_app.worker.errors.WorkerFatal`): ``wait()`` returns, ``exit_code`` is 1.

With :class:`~stream_app.alerting.settings.AlertingSettings` naming a rules file, the service also
runs the alert rules (:class:`~stream_app.worker.alerting.WorkerAlerting`): per-partition engines
fed after each cycle and handed over with the partitions, and the fleet-wide rules on the worker
holding partition 0 of the requests topic (:class:`PartitionLeader`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Sequence
from typing import Any

import faust
from faust.exceptions import ConsumerNotStarted
from prometheus_client import CollectorRegistry

from stream_app.alerting.dispatcher import AlertSink
from stream_app.alerting.metrics import AlertingMetrics
from stream_app.alerting.settings import AlertingSettings
from stream_app.core.rules import PipelineStatus, SkewTracker
from stream_app.storage.client import StorageClient, get_client
from stream_app.storage.migrate import Migrator
from stream_app.storage.queries import StorageQueries
from stream_app.storage.settings import StorageSettings
from stream_app.storage.sink import ClickHouseSink, FlushSink
from stream_app.worker.alerting import WorkerAlerting
from stream_app.worker.errors import WorkerFatal
from stream_app.worker.faust_app import FaustSender, build_app, connect_worker
from stream_app.worker.gc_tuning import tune_gc
from stream_app.worker.group_watermarks import GroupWatermarks
from stream_app.worker.http import MetricsServer
from stream_app.worker.kafka_consumer import FaustConsumerControl
from stream_app.worker.metrics import WorkerCollector
from stream_app.worker.partitions import Partition
from stream_app.worker.publisher import TopicPublisher
from stream_app.worker.runtime import StreamWorker, WindowListener, wall_clock_ms
from stream_app.worker.settings import WorkerSettings
from stream_app.worker.topics import create_topics

__all__ = ["WorkerService", "run_worker"]

logger = logging.getLogger(__name__)

_STOP_STEP_S = 20.0


class PartitionLeader:
    """The worker holding partition 0 of the requests topic evaluates the fleet-wide rules.

    The consumer group's assignment already gives every partition to exactly one worker and
    moves it on a rebalance (revoked before it is assigned elsewhere), so leadership needs no
    election of its own; it moves with partition 0, and the new leader restores the fleet
    rules' saved state first. A worker fenced out of the group drops its partitions at its
    next commit (within one flush interval).
    """

    def __init__(self) -> None:
        self.worker: StreamWorker | None = None

    def is_leader(self) -> bool:
        return self.worker is not None and 0 in self.worker.partitions


class WorkerService:
    """A worker process's components and their lifecycle (see the module docstring)."""

    def __init__(
        self,
        settings: WorkerSettings,
        storage: StorageSettings,
        *,
        sink: FlushSink | None = None,
        listeners: Sequence[WindowListener] = (),
        registry: CollectorRegistry | None = None,
        alerting: AlertingSettings | None = None,
        alert_sinks: Sequence[AlertSink] = (),
    ) -> None:
        self.settings = settings
        self.storage = storage
        self._sink = sink
        self._listeners = list(listeners)
        self._alerting_settings = alerting
        self._alert_sinks = list(alert_sinks)
        self.alerting: WorkerAlerting | None = None
        self.leader: PartitionLeader | None = None
        self.group_watermarks: GroupWatermarks | None = None
        self.registry = registry if registry is not None else CollectorRegistry()
        self.app: faust.App | None = None
        self.worker: StreamWorker | None = None
        self.metrics_server: MetricsServer | None = None
        self.exit_code = 0
        self._stopping = False
        self._skew = SkewTracker()
        self._loop_task: asyncio.Task[None] | None = None
        self._done = asyncio.Event()
        self._last_attempt_s = time.monotonic()

    async def start(self) -> None:
        """Bring everything up; returns once the Faust app runs (partitions follow)."""
        s = self.settings
        client = get_client(self.storage)
        await asyncio.to_thread(Migrator(client, self.storage).migrate)
        if s.create_topics:
            await create_topics(s)
        await self._start_alerting(client)  # before anything to stop: an invalid rules file
        app = build_app(s)
        consumer = FaustConsumerControl(app, s.requests_topic, request_timeout_s=10.0)
        sender = FaustSender(app)
        store = ClickHouseSink(client, self.storage)
        worker = StreamWorker(
            s,
            sink=self._sink or store,
            storage=StorageQueries(client, self.storage.database),
            consumer=consumer,
            dead_letters=TopicPublisher(sender, s.dlq_topic),
            windows=TopicPublisher(sender, s.windows_topic) if s.publish_windows else None,
            raw_events=store if self.storage.raw_events else None,
        )
        for listener in self._listeners:
            worker.add_listener(listener)
        connect_worker(app, worker)
        self.app, self.worker = app, worker
        if self.alerting is not None and self.leader is not None:
            self.leader.worker = worker
            worker.observers.add(self.alerting)
            worker.add_partition_listener(self.alerting.on_partition_windows)
        self.registry.register(WorkerCollector(worker))
        if s.metrics_port:
            self.metrics_server = MetricsServer(
                s.metrics_host, s.metrics_port, self.registry, self.health
            )
            await asyncio.to_thread(self.metrics_server.start)
        await app.start()
        self._loop_task = asyncio.create_task(self._cycles(), name="pwm-worker-cycles")
        logger.info(
            "worker %s consuming %s from %s", s.app_id, s.requests_topic, s.bootstrap_servers
        )

    async def _cycles(self) -> None:
        assert self.worker is not None
        assert self.app is not None
        interval_s = self.settings.pipeline.flush_interval_ms / 1000
        catch_up_s = self.settings.catch_up_flush_interval_ms / 1000
        behind_ms = self.settings.catch_up_behind_ms
        orphaned_since: float | None = None
        last_completed_s = time.monotonic()
        try:
            while not self._stopping:
                started = time.monotonic()
                if (
                    catch_up_s > interval_s
                    and started - last_completed_s < catch_up_s
                    and self.worker.catching_up(behind_ms)
                ):
                    # A backlog drains: fewer, larger flushes (each insert costs the same
                    # whatever it holds). Looked at again every interval: the tail of the
                    # backlog is stored at the usual pace.
                    self.worker.stats.cycles_deferred += 1
                    await asyncio.sleep(interval_s)
                    continue
                self._last_attempt_s = started
                if self.app.crashed:
                    raise WorkerFatal(f"the Faust app crashed: {self.app.crash_reason!r}")
                if self._assigned() and not self.worker.partitions and not self.worker.taking_over:
                    orphaned_since = orphaned_since or started
                    if started - orphaned_since > self.settings.broker_rebalance_timeout_s:
                        raise WorkerFatal("assigned partitions but holds none (no rebalance came)")
                else:
                    orphaned_since = None
                completed = await self.worker.run_cycle()
                if completed:
                    last_completed_s = time.monotonic()
                delay_s = interval_s if completed else (self.worker.retry_delay_s or interval_s)
                await asyncio.sleep(max(0.0, started + delay_s - time.monotonic()))
        except WorkerFatal as exc:
            logger.critical("worker stopping: %s", exc)
            self.exit_code = 1
            self._done.set()

    async def _start_alerting(self, client: StorageClient) -> None:
        settings = self._alerting_settings
        if settings is None or settings.rules_file is None:
            return
        s = self.settings
        self.group_watermarks = GroupWatermarks(
            s.bootstrap_servers,
            s.app_id,
            s.requests_topic,
            client_id=f"{s.client_id}-watermarks",
            timeout_s=s.broker_request_timeout_s,
        )
        self.leader = PartitionLeader()
        alerting = WorkerAlerting(
            settings,
            s.pipeline,
            rules_file=settings.rules_file,
            app_id=s.app_id,
            storage=client,
            database=self.storage.database,
            leader=self.leader,
            status=self.pipeline_status,
            completeness=self.group_watermarks.closed_through_ms,
            metrics=AlertingMetrics(self.registry),  # served on the worker's /metrics
            sinks=self._alert_sinks,
        )
        await alerting.start()  # RulesFileError: the rules file is invalid
        self.alerting = alerting

    def pipeline_status(self, partition: int | None) -> PipelineStatus:
        """The pipeline's health for one held partition (None: the most-behind one)."""
        worker = self.worker
        if worker is None:
            return PipelineStatus()
        sink_ok = not worker.stats.paused
        held = [Partition(partition)] if partition is not None else worker.partitions
        marks = []
        for p in held:
            state = worker.partition_state(p)
            if state is not None and state.aggregator.watermark_ms is not None:
                marks.append(state.aggregator.watermark_ms)
        skewed = (
            self._skew.update(worker.stats.clock_skew_by_host, wall_clock_ms())
            if partition is None
            else frozenset()
        )
        return PipelineStatus(
            sink_ok=sink_ok, watermark_ms=min(marks) if marks else None, skewed_hosts=skewed
        )

    def _assigned(self) -> set[int]:
        assert self.app is not None
        try:
            tps = self.app.consumer.assignment()
        except ConsumerNotStarted:
            return set()
        return {tp.partition for tp in tps if tp.topic == self.settings.requests_topic}

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, report) for ``/health`` (called from the metrics thread)."""
        worker, app = self.worker, self.app
        if worker is None or app is None:
            return False, {"status": "starting"}
        stalled_s = time.monotonic() - self._last_attempt_s
        loop_alive = self._loop_task is not None and not self._loop_task.done()
        healthy = loop_alive and not app.crashed and stalled_s < self.settings.health_stall_s
        stats = worker.stats
        status = "failing" if not healthy else "degraded" if stats.paused else "ok"
        return healthy, {
            "status": status,
            "paused": stats.paused,
            "broker_reachable": stats.broker_reachable,
            "partitions": worker.partitions,
            "lag": sum(worker.lag.values()),
            "last_flush_ms": stats.last_flush_wall_ms,
        }

    async def wait(self) -> None:
        """Return when the service ended by itself (a fatal error)."""
        await self._done.wait()

    async def stop(self) -> None:
        """Store and commit what is held, leave the group, stop everything."""
        self._stopping = True  # ends the loop even if a cancellation were lost on the way
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self.worker is not None:
            await self.worker.shutdown()  # gives the partitions up: their alert state is saved
        if self.alerting is not None:
            await _bounded("alerting", self.alerting.close(), _STOP_STEP_S)
        if self.group_watermarks is not None:
            await _bounded("watermark reader", self.group_watermarks.close(), _STOP_STEP_S)
        if self.app is not None:
            await _bounded("Faust app", self.app.stop(), _STOP_STEP_S)
        if self.metrics_server is not None:
            await asyncio.to_thread(self.metrics_server.stop)
        self._done.set()


async def _bounded(what: str, step: Awaitable[None], timeout_s: float) -> None:
    """One step of stop(), bounded: a step that hangs must not keep the worker from stopping."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s):
            await step
    except TimeoutError:
        logger.warning("stopping the %s took over %.0f s, went on without it", what, timeout_s)
    else:
        logger.debug("stopped the %s in %.2f s", what, time.monotonic() - started)


async def run_worker(
    settings: WorkerSettings,
    storage: StorageSettings,
    stop: asyncio.Event,
    alerting: AlertingSettings | None = None,
) -> int:
    """Run a worker until ``stop`` is set or it fails; returns the process exit code."""
    tune_gc(settings.gc_threshold0)
    service = WorkerService(settings, storage, alerting=alerting)
    try:
        await service.start()
        stopped = asyncio.create_task(stop.wait())
        ended = asyncio.create_task(service.wait())
        await asyncio.wait({stopped, ended}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        ended.cancel()
    finally:
        await service.stop()
    return service.exit_code
