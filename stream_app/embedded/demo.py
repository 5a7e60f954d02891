"""``proxywhirl-metrics demo``: simulated fleet -> producer -> in-process pipeline -> chDB.

Everything runs in one process: the fleet simulator emits through a real
:class:`producer.MetricsProducer` whose in-process transport feeds the
:class:`EmbeddedPipeline`, which writes to the embedded ClickHouse under the data directory
(history survives restarts). A table per closed window is printed, and between the tables one
line per alert state change: the rules (the bundled demo rules unless ``PWM_ALERTING_RULES_FILE``
names a file) are evaluated as windows close (:class:`~stream_app.embedded.alerting.
EmbeddedAlerting`) and the alerts kept in the ClickHouse alert history. Ctrl-C (or
``duration_s``) stops it cleanly: the producer is flushed, the pipeline drained, the last
partial sums stored and the queued alerts delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import dataclass
from typing import TextIO

from prometheus_client import CollectorRegistry

from producer import MetricsProducer, ProducerSettings
from stream_app.alerting.metrics import AlertingMetrics
from stream_app.alerting.settings import AlertingSettings
from stream_app.dead_letters import FileDeadLetters
from stream_app.embedded.alerting import EmbeddedAlerting, demo_rules_file
from stream_app.embedded.pipeline import EmbeddedPipeline, PipelineStats
from stream_app.embedded.settings import EmbeddedSettings
from stream_app.embedded.summary import SummaryPrinter
from stream_app.simulator import FleetSimulator, load_scenario, run_realtime
from stream_app.storage.client import get_client
from stream_app.storage.migrate import Migrator
from stream_app.storage.settings import StorageSettings
from stream_app.storage.sink import ClickHouseSink

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoResult:
    emitted: int
    dropped: int
    pipeline: PipelineStats
    source: str


async def run_demo(
    settings: EmbeddedSettings,
    storage: StorageSettings,
    *,
    alerting: AlertingSettings | None = None,
    out: TextIO | None = None,
) -> DemoResult:
    """Run the demo until ``settings.duration_s`` passes or SIGINT/SIGTERM arrives.

    ``alerting`` defaults to ``AlertingSettings(data_dir=settings.data_dir)`` (environment
    ``PWM_ALERTING_*``). An invalid rules file raises RulesFileError before anything runs.
    """
    out = out or sys.stdout
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    client = get_client(storage)
    migrator = Migrator(client, storage)
    await asyncio.to_thread(migrator.migrate)
    sink = ClickHouseSink(client, storage)
    pipeline = EmbeddedPipeline(
        settings.pipeline, sink, FileDeadLetters(settings.data_dir / "dead-letters.jsonl")
    )
    if settings.print_summary:
        pipeline.add_listener(SummaryPrinter(out))
    scenario = load_scenario(settings.scenario)
    if settings.rate_per_s is not None:
        scenario = scenario.with_total_rate(settings.rate_per_s)
    simulator = FleetSimulator(scenario, seed=settings.seed)
    alerts: EmbeddedAlerting | None = None
    if settings.alerts:
        alerting = alerting or AlertingSettings(data_dir=settings.data_dir)
        alerts = EmbeddedAlerting(
            alerting,
            pipeline,
            storage=client,
            database=storage.database,
            rules_file=demo_rules_file(alerting),
            # A registry of its own: the demo has no /metrics, and runs may repeat in a process.
            metrics=AlertingMetrics(CollectorRegistry()),
            console=out if settings.print_alerts else None,
        )
        await alerts.start()
    producer = MetricsProducer(
        ProducerSettings(
            source_host=settings.source_host,
            fleet_key=settings.fleet_key,
            batch_max_events=500,
            close_at_exit=False,
        ),
        pipeline.transport(),
    )
    stop_pipeline = asyncio.Event()
    stop_fleet = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop_fleet.set)
    out.write(
        f"demo: {len(simulator.scopes)} pool/region scopes, "
        f"{scenario.total_rate_per_s:.0f} requests/s, window {settings.pipeline.window_s}s "
        f"(+{settings.pipeline.grace_ms} ms grace), storage {storage.redacted_dsn()}\n"
    )
    if alerts is not None:
        out.write(
            f"demo: {len(alerts.rules.rules)} alert rule(s) from {alerts.rules_file} "
            f"(edits apply live), alerts to {', '.join(alerts.dispatcher.sink_names)}\n"
        )
    out.flush()
    pipeline_task = asyncio.create_task(pipeline.run(stop_pipeline), name="pipeline")
    try:
        report = await run_realtime(
            simulator, producer.emit, duration_s=settings.duration_s, stop=stop_fleet
        )
        await asyncio.to_thread(producer.flush, 10.0)
    finally:
        stop_pipeline.set()
        await pipeline_task
        if alerts is not None:
            await alerts.close()
        await asyncio.to_thread(producer.close, 5.0)
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    stats = producer.stats()
    out.write(
        f"demo: stopped after {report.emitted} events emitted, {stats.dropped_full} dropped, "
        f"{pipeline.stats.events} aggregated, {pipeline.stats.windows_closed} windows closed, "
        f"{pipeline.stats.late_events} late, {pipeline.stats.dead_letters} dead letters\n"
    )
    out.flush()
    if alerts is not None:
        fired, resolved = alerts.transitions()
        out.write(
            f"demo: alerts fired {fired}, resolved {resolved} "
            f"(history: proxywhirl-metrics alerts history --data-dir {settings.data_dir})\n"
        )
        out.flush()
    return DemoResult(
        emitted=report.emitted,
        dropped=stats.dropped_full,
        pipeline=pipeline.stats,
        source=pipeline.source,
    )
