"""A real Apache Kafka broker (single-node KRaft: broker + controller) on loopback for tests.

:class:`KafkaBroker` gives ``work_dir/data`` formatted KRaft storage once (``kafka-storage
format`` with a generated cluster id, see ``kafka_storage``), runs ``kafka.Kafka`` from the Maven
Central jars on free ports and waits until an aiokafka client gets metadata with a broker and
a controller: never a sleep.
``stop()`` (SIGTERM, controlled shutdown; SIGKILL after the timeout), ``kill()`` (SIGKILL, a
crash), ``start()`` and ``restart()`` keep the same data directory and ports, so outage tests
see their data again. Blocking methods have ``*_async`` twins that keep the event loop free.

Local use (foreground until Ctrl-C): ``scripts/kafka/run.sh [--port 9092] [--data-dir DIR]``.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import logging
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from .errors import HarnessStartError
from .kafka_admin import cluster_ready
from .kafka_config import broker_properties, log4j2_properties, render_properties
from .kafka_dist import SERVER_MAIN, ClassDataArchive, KafkaDistribution, kafka_distribution
from .kafka_storage import formatted_storage, read_cluster_id
from .ports import LOOPBACK, free_port, port_accepts
from .process import ManagedProcess, tail
from .settings import HarnessSettings

logger = logging.getLogger(__name__)

_POLL_S = 0.1
_BIND_ATTEMPTS = 3


class KafkaBroker:
    """One single-node Kafka cluster whose process the test controls."""

    def __init__(
        self,
        dist: KafkaDistribution,
        work_dir: Path,
        *,
        port: int | None = None,
        heap_mb: int = 512,
        start_timeout_s: float = 120.0,
        stop_timeout_s: float = 30.0,
        auto_create_topics: bool = False,
        quick_jit: bool = False,
        extra_config: Mapping[str, str] | None = None,
    ) -> None:
        self.dist = dist
        self.quick_jit = quick_jit
        self.work_dir = work_dir
        self.heap_mb = heap_mb
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.auto_create_topics = auto_create_topics
        self.extra_config = dict(extra_config or {})
        self._port_fixed = port is not None
        self._port = port if port is not None else free_port()
        self._controller_port = free_port()
        self._ever_started = False
        self._cds: ClassDataArchive | None = None
        self._killed = False
        self._log_offsets = (0, 0)
        self.last_start_s: float | None = None
        self._process = ManagedProcess(
            "kafka-broker", self._argv(()), log_path=self.log_dir / "stdout.log", cwd=self.work_dir
        )

    # ----------------------------------------------------------------- paths and addresses
    @property
    def port(self) -> int:
        return self._port

    @property
    def controller_port(self) -> int:
        return self._controller_port

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT`` for ``bootstrap_servers``."""
        return f"{LOOPBACK}:{self._port}"

    @property
    def data_dir(self) -> Path:
        return self.work_dir / "data"

    @property
    def log_dir(self) -> Path:
        return self.work_dir / "logs"

    @property
    def server_log(self) -> Path:
        return self.log_dir / "server.log"

    @property
    def config_path(self) -> Path:
        return self.work_dir / "config" / "server.properties"

    @property
    def log4j_path(self) -> Path:
        return self.work_dir / "config" / "log4j2.properties"

    @property
    def running(self) -> bool:
        return self._process.running

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running else None

    # ------------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Start the broker and block until it answers metadata requests."""
        started = time.monotonic()
        for attempt in range(1, _BIND_ATTEMPTS + 1):
            self._launch()
            failure = self._run_blocking(self._await_ready(started + self.start_timeout_s))
            if failure is None:
                self._started(started)
                return
            self._handle_failure(failure, attempt)

    async def start_async(self) -> None:
        """:meth:`start` without blocking the running event loop."""
        started = time.monotonic()
        for attempt in range(1, _BIND_ATTEMPTS + 1):
            if not self._formatted():
                await asyncio.to_thread(self._prepare)
            self._launch()
            failure = await self._await_ready(started + self.start_timeout_s)
            if failure is None:
                self._started(started)
                return
            await asyncio.to_thread(self._handle_failure, failure, attempt)

    def stop(self) -> None:
        """Controlled shutdown (SIGTERM); SIGKILL if it takes longer than ``stop_timeout_s``."""
        if not self.running:
            return
        code = self._process.terminate(self.stop_timeout_s)
        self._after_exit(code)
        logger.info("kafka broker %s stopped (exit %s)", self.bootstrap, code)

    async def stop_async(self) -> None:
        await asyncio.to_thread(self.stop)

    def kill(self) -> None:
        """SIGKILL: the broker dies without a controlled shutdown (a crash)."""
        if not self.running:
            return
        self._killed = True
        code = self._process.kill()
        self._after_exit(code)
        logger.info("kafka broker %s killed", self.bootstrap)

    def restart(self) -> None:
        """Stop, then start again on the same port with the same data."""
        self.stop()
        self.start()

    async def restart_async(self) -> None:
        await self.stop_async()
        await self.start_async()

    def close(self, *, remove_data: bool = True) -> None:
        """Stop and (by default) delete the data directory; the logs stay for post-mortems."""
        self.stop()
        if remove_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> KafkaBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"KafkaBroker({self.bootstrap}, kafka {self.dist.version}, {state})"

    # -------------------------------------------------------------------------- internals
    def _argv(self, cds_args: Sequence[str]) -> list[str]:
        return [
            str(self.dist.java),
            *cds_args,
            f"-Xmx{self.heap_mb}m",
            f"-Xms{min(self.heap_mb, 128)}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            # C1 only halves start-up CPU (about 3 s instead of 6 s); full JIT for long runs.
            *(["-XX:TieredStopAtLevel=1"] if self.quick_jit else []),
            "-XX:-UsePerfData",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.log4j_path}",
            f"-Dkafka.logs.dir={self.log_dir}",
            "-cp",
            self.dist.classpath,
            SERVER_MAIN,
            str(self.config_path),
        ]

    def _formatted(self) -> bool:
        return (self.data_dir / "meta.properties").is_file()

    def _write_config(self) -> None:
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        props = broker_properties(
            broker_port=self._port,
            controller_port=self._controller_port,
            data_dir=self.data_dir,
            auto_create_topics=self.auto_create_topics,
            extra=self.extra_config,
        )
        self.config_path.write_text(render_properties(props))
        self.log4j_path.write_text(log4j2_properties(self.server_log))

    def _prepare(self) -> None:
        self._write_config()
        if not self._formatted():
            formatted_storage(self.dist, self.data_dir)

    @property
    def cluster_id(self) -> str | None:
        """The cluster id in the data directory (None before the first start)."""
        return read_cluster_id(self.data_dir) if self._formatted() else None

    def _launch(self) -> None:
        if self.running:
            raise HarnessStartError(f"{self!r} is already running")
        self._prepare()
        self._cds = self.dist.class_data_archive("broker")
        self._killed = False
        self._process.argv = self._argv(self._cds.jvm_args)
        self._log_offsets = (_size(self.server_log), _size(self._process.log_path))
        self._process.start()

    async def _await_ready(self, deadline: float) -> str | None:
        """None once the broker answers; otherwise why it will not (exited, or timed out)."""
        while True:
            reason = self._process.exit_reason()
            if reason is not None:
                return reason
            if port_accepts(self._port) and await cluster_ready(self.bootstrap):
                return None
            if time.monotonic() >= deadline:
                return f"no metadata from {self.bootstrap} within {self.start_timeout_s} s"
            await asyncio.sleep(_POLL_S)

    @staticmethod
    def _run_blocking(coro: Coroutine[Any, Any, str | None]) -> str | None:
        """Run a coroutine to completion from sync code, even inside a running event loop."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, coro).result()

    def _started(self, started: float) -> None:
        self._ever_started = True
        self.last_start_s = time.monotonic() - started
        logger.info(
            "kafka broker %s ready in %.2f s (kafka %s, pid %s)",
            self.bootstrap,
            self.last_start_s,
            self.dist.version,
            self._process.pid,
        )

    def _handle_failure(self, failure: str, attempt: int) -> None:
        exited = not self.running
        if not exited:
            with contextlib.suppress(Exception):
                self._process.kill()
        self._after_exit(None)
        log_text = self._process.log_tail() + "\n" + tail(self.server_log, 30)
        this_run = _read_from(self.server_log, self._log_offsets[0]) + _read_from(
            self._process.log_path, self._log_offsets[1]
        )
        bind_clash = "Address already in use" in this_run or "BindException" in this_run
        retry = exited and bind_clash and not self._port_fixed and not self._ever_started
        if retry and attempt < _BIND_ATTEMPTS:
            logger.warning("kafka ports %d/%d taken; retrying", self._port, self._controller_port)
            self._port, self._controller_port = free_port(), free_port()
            return
        raise HarnessStartError(
            f"Kafka {self.dist.version} broker did not start: {failure}\n"
            f"--- {self._process.log_path} / {self.server_log} (tail):\n{log_text}"
        )

    def _after_exit(self, code: int | None) -> None:
        if self._cds is not None:
            self._cds.commit(exited_cleanly=code is not None and code >= 0 and not self._killed)
            self._cds = None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read_from(path: Path, offset: int, limit: int = 4 * 1024 * 1024) -> str:
    """The text appended to ``path`` since ``offset`` (at most ``limit`` bytes)."""
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read(limit).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a local single-node Kafka on loopback.")
    parser.add_argument("--port", type=int, default=9092)
    parser.add_argument("--data-dir", type=Path, default=None, help="kept between runs if given")
    parser.add_argument("--auto-create-topics", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = HarnessSettings()
    work_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="pwm-kafka-"))
    broker = KafkaBroker(
        kafka_distribution(settings),
        work_dir,
        port=args.port,
        heap_mb=settings.kafka_heap_mb,
        auto_create_topics=args.auto_create_topics,
        quick_jit=False,
    )
    broker.start()
    sys.stdout.write(f"kafka {settings.kafka_version} on {broker.bootstrap} (logs: {work_dir})\n")
    sys.stdout.flush()
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    while broker.running and signal.sigtimedwait(stop_signals, 1.0) is None:
        pass
    exited = not broker.running
    broker.close(remove_data=args.data_dir is None)
    return 1 if exited else 0


if __name__ == "__main__":
    raise SystemExit(_main())
