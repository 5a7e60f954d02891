"""``proxywhirl-metrics demo``: ``serve`` plus a simulated fleet, in one process.

The fleet simulator emits through a real :class:`producer.MetricsProducer` whose in-process
transport feeds the same queue as the HTTP ingest of :class:`stream_app.serve.process.
ServeProcess` (pipeline -> embedded ClickHouse under the data directory; history survives
restarts). The API (REST, ``/metrics``, ingest) listens on ``http_port`` (0: no HTTP) and the
URL is printed. A table per closed window is printed, and between the tables one line per alert
state change: the rules (the bundled demo rules unless a rules file is given) are evaluated as
windows close and the alerts kept in the ClickHouse alert history. Ctrl-C (or ``duration_s``)
stops it cleanly: the producer is flushed, HTTP stops, the pipeline is drained, the last partial
sums stored and the queued alerts delivered.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from typing import TextIO

from api.settings import ApiSettings
from producer import MetricsProducer, ProducerSettings
from stream_app.alerting.settings import AlertingSettings
from stream_app.embedded.alerting import demo_rules_file
from stream_app.embedded.pipeline import PipelineStats
from stream_app.embedded.settings import EmbeddedSettings
from stream_app.serve.process import ServeOptions, ServeProcess, wait_for_stop
from stream_app.serve.settings import IngestSettings
from stream_app.simulator import FleetSimulator, load_scenario, run_realtime
from stream_app.storage.settings import StorageSettings

__all__ = ["DemoResult", "run_demo"]


@dataclass(frozen=True)
class DemoResult:
    emitted: int
    dropped: int
    pipeline: PipelineStats
    source: str
    url: str | None = None


async def run_demo(
    settings: EmbeddedSettings,
    storage: StorageSettings,
    *,
    alerting: AlertingSettings | None = None,
    api: ApiSettings | None = None,
    ingest: IngestSettings | None = None,
    http_port: int = 8000,
    out: TextIO | None = None,
) -> DemoResult:
    """Run the demo until ``settings.duration_s`` passes or SIGINT/SIGTERM arrives.

    ``http_port`` 0 serves no HTTP. ``alerting`` defaults to
    ``AlertingSettings(data_dir=settings.data_dir)`` (environment ``PWM_ALERTING_*``), ``api``
    to ``ApiSettings()`` on ``http_port``. An invalid rules file raises RulesFileError before
    anything runs; a store another process holds raises StoreInUse.
    """
    out = out or sys.stdout
    alerting = alerting or AlertingSettings(data_dir=settings.data_dir)
    api = (api or ApiSettings()).model_copy(update={"port": http_port or 0})
    scenario = load_scenario(settings.scenario)
    if settings.rate_per_s is not None:
        scenario = scenario.with_total_rate(settings.rate_per_s)
    simulator = FleetSimulator(scenario, seed=settings.seed)
    options = ServeOptions(
        data_dir=settings.data_dir,
        pipeline=settings.pipeline,
        storage=storage,
        api=api,
        ingest=ingest or IngestSettings(),
        alerting=alerting,
        rules_file=demo_rules_file(alerting) if settings.alerts else None,
        http=http_port != 0,
        print_summary=settings.print_summary,
        print_alerts=settings.print_alerts,
    )
    process = ServeProcess(options, out=out)
    async with process.running():
        pipeline = process.pipeline
        assert pipeline is not None
        producer = MetricsProducer(
            ProducerSettings(
                source_host=settings.source_host,
                fleet_key=settings.fleet_key,
                batch_max_events=500,
                close_at_exit=False,
                envelope_schema="v2",  # the pipeline beside it reads columnar envelopes
            ),
            pipeline.transport(),
        )
        out.write(
            f"demo: {len(simulator.scopes)} pool/region scopes, "
            f"{scenario.total_rate_per_s:.0f} requests/s, window {settings.pipeline.window_s}s "
            f"(+{settings.pipeline.grace_ms} ms grace), storage {storage.redacted_dsn()}\n"
        )
        if process.url is not None:
            out.write(
                f"demo: serving {process.url} (summary {process.url}/api/v1/summary, "
                f"ingest {process.url}/api/v1/ingest)\n"
            )
        alerts = process.alerts
        if alerts is not None:
            out.write(
                f"demo: {len(alerts.rules.rules)} alert rule(s) from {alerts.rules_file} "
                f"(edits apply live), alerts to {', '.join(alerts.dispatcher.sink_names)}\n"
            )
        out.flush()
        stop_fleet = asyncio.Event()
        stopper = asyncio.create_task(wait_for_stop(stop_fleet, None), name="pwm-demo-signals")
        watcher = asyncio.create_task(process.must_stop.wait(), name="pwm-demo-pipeline")
        watcher.add_done_callback(lambda _: stop_fleet.set())
        try:
            report = await run_realtime(
                simulator, producer.emit, duration_s=settings.duration_s, stop=stop_fleet
            )
            await asyncio.to_thread(producer.flush, 10.0)
        finally:
            stop_fleet.set()
            watcher.cancel()
            await stopper
            await asyncio.to_thread(producer.close, 5.0)
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
        url=process.url,
    )
