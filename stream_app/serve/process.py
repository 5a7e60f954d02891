"""The ``serve`` process: store, pipeline, alerting, HTTP ingest and the API app under uvicorn.

One asyncio loop runs everything: the pipeline task (the queue every transport feeds, the pure
core, one idempotent insert per flush), the alert rules as windows close, and uvicorn serving
the API app of :func:`api.app.create_app` with the ingest router mounted. chDB calls run in
worker threads (the storage client serialises them). The process holds the embedded store
(:mod:`stream_app.storage.store_lock`) and records its URL there, so a second process pointed at
the store is told to query this one.

Start-up: open the store (or refuse: in use), migrate, start the pipeline, replay the ingest
inbox, then listen. Stop (SIGINT, SIGTERM, ``duration_s``, or the caller's event): stop
listening (in-flight requests finish), drain and flush the pipeline, deliver queued alerts.
``demo`` is this plus the fleet simulator feeding the same queue in process
(:mod:`stream_app.embedded.demo`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import uvicorn
from prometheus_client import CollectorRegistry

from api.app import create_app
from api.routes.ingest import ingest_router
from api.settings import ApiSettings
from stream_app.alerting.metrics import AlertingMetrics
from stream_app.alerting.settings import AlertingSettings
from stream_app.dead_letters import FileDeadLetters
from stream_app.embedded.alerting import EmbeddedAlerting
from stream_app.embedded.pipeline import EmbeddedPipeline, wall_clock_ms
from stream_app.embedded.summary import SummaryPrinter
from stream_app.serve.dead_letters import IngestDeadLetters
from stream_app.serve.errors import ListenFailed
from stream_app.serve.inbox import IngestInbox
from stream_app.serve.ingestor import EmbeddedIngestor, InboxTrimmingSink
from stream_app.serve.metrics import IngestCollector
from stream_app.serve.settings import IngestSettings
from stream_app.settings import PipelineSettings
from stream_app.storage.client import StorageClient, get_client, store_lock
from stream_app.storage.migrate import Migrator
from stream_app.storage.queries import StorageQueries
from stream_app.storage.settings import StorageSettings
from stream_app.storage.sink import ClickHouseSink

__all__ = ["ServeOptions", "ServeProcess", "serving_url"]

logger = logging.getLogger(__name__)

INBOX_FILE = "ingest-inbox.sqlite"
_STOP_HTTP_S = 10.0


@dataclass(frozen=True)
class ServeOptions:
    """What one ``serve`` (or ``demo``) process runs."""

    data_dir: Path
    pipeline: PipelineSettings
    storage: StorageSettings
    api: ApiSettings
    ingest: IngestSettings
    alerting: AlertingSettings
    rules_file: Path | None = None  # None: no alert rules
    http: bool = True  # False: no HTTP at all (demo --port 0)
    print_summary: bool = False
    print_alerts: bool = False


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the process decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    """A bound TCP socket for uvicorn; :class:`ListenFailed` when the address is not usable.

    Made with ``IPPROTO_TCP`` explicitly: asyncio sets ``TCP_NODELAY`` only on such sockets,
    and without it every keep-alive response waits ~40 ms for a delayed ACK (Nagle).
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ListenFailed(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ListenFailed(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (choose another with --port)"
        ) from exc
    return sock


def serving_url(host: str, port: int) -> str:
    """The URL clients use (a wildcard bind is reached on loopback from this machine)."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


class ServeProcess:
    """The parts of one process, started and stopped in order (see the module docstring)."""

    def __init__(self, options: ServeOptions, *, out: TextIO) -> None:
        self.options = options
        self._out = out
        self.url: str | None = None
        self.pipeline: EmbeddedPipeline | None = None
        self.ingestor: EmbeddedIngestor | None = None
        self.alerts: EmbeddedAlerting | None = None
        self.client: StorageClient | None = None
        # Set when the process should stop: the pipeline task ended on its own (it failed), or
        # (by wait_for_stop) SIGINT/SIGTERM.
        self.must_stop = asyncio.Event()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[ServeProcess]:
        """Start everything; on exit stop it in order (see the module docstring)."""
        opts = self.options
        opts.data_dir.mkdir(parents=True, exist_ok=True)
        client = get_client(opts.storage)  # raises StoreInUse when another process holds it
        self.client = client
        await asyncio.to_thread(Migrator(client, opts.storage).migrate)
        inbox = IngestInbox(
            opts.data_dir / INBOX_FILE,
            dedup_ttl_s=opts.ingest.dedup_ttl_s,
            synchronous=opts.ingest.inbox_synchronous,
        )
        store = ClickHouseSink(client, opts.storage)
        sink = InboxTrimmingSink(store, inbox)
        pipeline = EmbeddedPipeline(
            opts.pipeline,
            sink,
            FileDeadLetters(opts.data_dir / "dead-letters.jsonl"),
            raw_events=store if opts.storage.raw_events else None,
        )
        self.pipeline = pipeline
        if opts.print_summary:
            pipeline.add_listener(SummaryPrinter(self._out))
        if opts.rules_file is not None:
            self.alerts = EmbeddedAlerting(
                opts.alerting,
                pipeline,
                storage=client,
                database=opts.storage.database,
                rules_file=opts.rules_file,
                metrics=AlertingMetrics(CollectorRegistry()),
                console=self._out if opts.print_alerts else None,
            )
            await self.alerts.start()
        handoff = pipeline.handoff()
        ingestor = EmbeddedIngestor(
            opts.ingest, inbox, handoff, IngestDeadLetters(client, opts.storage.database)
        )
        self.ingestor = ingestor
        redo = await asyncio.to_thread(ingestor.interrupted_flush, client, opts.storage.database)
        if redo:  # before anything else, as one flush: the same offsets, the same token
            now_ms = wall_clock_ms()
            for record in redo:
                pipeline.process_decoded(record, now_ms)
            await pipeline.flush_and_close()
        stop_pipeline = asyncio.Event()
        pipeline_task = asyncio.create_task(pipeline.run(stop_pipeline), name="pwm-pipeline")
        pipeline_task.add_done_callback(lambda _: self.must_stop.set())
        server: _Server | None = None
        server_task: asyncio.Task[None] | None = None
        try:
            await asyncio.to_thread(ingestor.recover, client, opts.storage.database)
            if opts.http:
                server, server_task = await self._listen(client, ingestor)
            yield self
        finally:
            if server is not None and server_task is not None:
                server.should_exit = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(server_task), _STOP_HTTP_S)
                if not server_task.done():
                    server.force_exit = True
                    await server_task
            stop_pipeline.set()
            await pipeline_task
            if self.alerts is not None:
                await self.alerts.close()
            inbox.close()

    async def _listen(
        self, client: StorageClient, ingestor: EmbeddedIngestor
    ) -> tuple[_Server, asyncio.Task[None]]:
        opts = self.options
        app = create_app(
            opts.api,
            StorageQueries(client, opts.storage.database),
            routers=[ingest_router(ingestor, max_body_bytes=opts.ingest.max_body_bytes)],
            rules_path=opts.rules_file,
        )
        app.state.registry.register(IngestCollector(ingestor.counters, ingestor.queued))
        config = uvicorn.Config(
            app,
            host=opts.api.host,
            port=opts.api.port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
        # Bound here, not by uvicorn (which exits the process when it cannot bind).
        sock = _bind(opts.api.host, opts.api.port)
        port = int(sock.getsockname()[1])
        server = _Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]), name="pwm-http")
        while not server.started:
            if task.done():
                task.result()
                raise ListenFailed(f"the HTTP server on {opts.api.host}:{port} stopped")
            await asyncio.sleep(0.02)
        self.url = serving_url(opts.api.host, port)
        lock = store_lock()
        if lock is not None:
            lock.announce(url=self.url)
        logger.info("serving %s (storage %s)", self.url, opts.storage.redacted_dsn())
        return server, task


async def wait_for_stop(stop: asyncio.Event, duration_s: float | None) -> None:
    """Until SIGINT/SIGTERM, ``stop`` is set, or ``duration_s`` passes."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), duration_s)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


async def run_serve(options: ServeOptions, *, out: TextIO) -> None:
    """``proxywhirl-metrics serve``: run until SIGINT/SIGTERM."""
    process = ServeProcess(options, out=out)
    async with process.running():
        rules = f", rules {options.rules_file}" if options.rules_file is not None else ""
        out.write(
            f"serve: listening on {process.url} (ingest {process.url}/api/v1/ingest), "
            f"storage {options.storage.redacted_dsn()}{rules}\n"
        )
        out.flush()
        await wait_for_stop(process.must_stop, None)  # or SIGINT/SIGTERM
    ingestor, pipeline = process.ingestor, process.pipeline
    if ingestor is not None and pipeline is not None:
        c = ingestor.counters
        out.write(
            f"serve: stopped; {c.events_accepted} events taken over HTTP ({c.duplicates} "
            f"duplicate batches, {c.events_refused} events refused), {pipeline.stats.events} "
            f"aggregated, {pipeline.stats.windows_closed} windows closed\n"
        )
        out.flush()
