"""Scaling: 1 worker against 2 workers draining the same 4-partition backlog.

The project's real worker (:class:`stream_app.worker.service.WorkerService`, what
``proxywhirl-metrics worker`` runs: Faust consumer, decode, windows, chDB inserts, commits), each
in its own process with its own embedded chDB directory (one ClickHouse server would be shared
in production; two processes cannot share an embedded one). The workers read the run's backlog
(``peer_backlog.py``: its envelope topic is the requests topic of ``topic_prefix=<prefix>``),
each run as a new consumer group from the start.

Each worker process migrates its storage, reports ready, and joins the group when all are
ready (the broker's ``group.initial.rebalance.delay.ms`` lets them share the partitions from the
first assignment); then it reports its event count, lag, partitions and CPU time every 0.1 s.
``events_per_s`` counts from the first report in which every worker holds partitions and events
have been processed, to the first report in which all the backlog's events are processed (what
the workers' consume, decode and aggregate sustain; flushes to chDB run every second in between);
``events_per_s_incl_rebalance`` from the first processed event; ``seconds_to_lag_0`` until the
workers report no lag (their lag is refreshed at their cycles, so it trails by up to a second).
The scaling factor is the 2-worker rate over the 1-worker rate of the same run.

Run: .venv/bin/python benchmarks/worker_scaling.py [--backlog manifest.json | --events N]
     [--workers 1,2] [--tiny]
Writes benchmarks/results/worker_scaling.json (``worker_scaling.tiny.json`` with --tiny).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_env import load_average, write_result  # noqa: E402
from benchmarks.peer_backlog import Backlog, add_backlog_arguments, backlog_for  # noqa: E402

REPORT_EVERY_S = 0.1


def _worker_settings(bootstrap: str, prefix: str, app_id: str, partitions: int) -> Any:
    from stream_app.worker.settings import WorkerSettings

    return WorkerSettings(
        bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        app_id=app_id,
        metrics_port=0,
        create_topics=False,
        topics={"requests_partitions": partitions},
    )


async def _child(args: argparse.Namespace) -> None:
    """One worker process: migrate, report ready, wait for go, drain and report until stdin ends."""
    from stream_app.storage.client import get_client
    from stream_app.storage.migrate import Migrator
    from stream_app.storage.settings import StorageSettings
    from stream_app.worker.gc_tuning import tune_gc
    from stream_app.worker.service import WorkerService

    settings = _worker_settings(args.bootstrap, args.prefix, args.app_id, args.partitions)
    tune_gc(settings.gc_threshold0)  # as `proxywhirl-metrics worker` (run_worker) does
    storage = StorageSettings(dsn=f"chdb://{args.chdb}", database="bench_scaling")
    await asyncio.to_thread(Migrator(get_client(storage), storage).migrate)
    print(json.dumps({"ready": True}), flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # "go"
    service = WorkerService(settings, storage)
    await service.start()
    worker = service.worker
    assert worker is not None
    stop = asyncio.create_task(asyncio.to_thread(sys.stdin.readline))
    try:
        while not stop.done():
            report = {
                "t": time.perf_counter(),
                "cpu": time.process_time(),
                "events": worker.stats.events,
                "partitions": len(worker.partitions),
                "lag": sum(worker.lag.values()),
            }
            print(json.dumps(report), flush=True)
            await asyncio.sleep(REPORT_EVERY_S)
    finally:
        await service.stop()


class _Child:
    """A worker process and a thread reading its reports (a pipe's buffered lines would hide
    from ``select``, delaying what the parent sees)."""

    def __init__(self, backlog: Backlog, app_id: str, chdb: Path) -> None:
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            "--bootstrap",
            backlog.bootstrap,
            "--prefix",
            backlog.prefix,
            "--app-id",
            app_id,
            "--chdb",
            str(chdb),
            "--partitions",
            str(backlog.partitions),
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, bufsize=1
        )
        self.last: dict[str, Any] = {}
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def read(self, timeout_s: float) -> dict[str, Any] | None:
        """The next report (None after ``timeout_s``); keeps the newest progress in ``last``."""
        try:
            line = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            return None
        if line is None:
            raise RuntimeError(f"worker process ended (exit {self.proc.wait()})")
        report: dict[str, Any] = json.loads(line)
        if "t" in report:
            self.last = report
        return report

    def drain_reports(self) -> None:
        while self._lines.qsize():
            self.read(0)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("stop")
                self.proc.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def drain(backlog: Backlog, workers: int, timeout_s: float) -> dict[str, Any]:
    app_id = f"bench-scaling-{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory(prefix="pwm-bench-scaling-") as work:
        children = [_Child(backlog, app_id, Path(work) / f"chdb{i}") for i in range(workers)]
        try:
            deadline = time.monotonic() + timeout_s
            for child in children:
                while (report := child.read(1.0)) is None or "ready" not in report:
                    if time.monotonic() > deadline:
                        raise TimeoutError("worker processes not ready")
            for child in children:
                child.send("go")
            first: tuple[float, int, float] | None = None  # (t, events, cpu) at first events
            steady: tuple[float, int, float] | None = None  # ... when every worker holds some
            processed: tuple[float, int, float] | None = None  # ... when all are processed
            shares: list[int] = []
            while True:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"drain not finished: {[c.last for c in children]}")
                children[0].read(1.0)  # wait for news, then take everyone's newest
                for child in children:
                    child.drain_reports()
                lasts = [c.last for c in children if c.last]  # a silent one has done nothing
                if not lasts:
                    continue
                t = max(last["t"] for last in lasts)
                events = sum(last["events"] for last in lasts)
                cpu = sum(last["cpu"] for last in lasts)
                if first is None and events > 0:
                    first = (t, events, cpu)
                everyone = len(lasts) == len(children)
                if (
                    steady is None
                    and events > 0
                    and everyone
                    and all(x["partitions"] for x in lasts)
                ):
                    steady = (t, events, cpu)
                if processed is None and events >= backlog.events:
                    processed = (t, events, cpu)
                    shares = [last["events"] for last in lasts]
                held = sum(last["partitions"] for last in lasts)
                lag = sum(last["lag"] for last in lasts)
                if events >= backlog.events and held == backlog.partitions and lag == 0:
                    break
        finally:
            for child in children:
                child.close()
    assert first is not None
    assert processed is not None
    end_t, end_events, end_cpu = processed

    def rate(since: tuple[float, int, float] | None) -> int | None:
        """Events/s from ``since`` to the end; None when nothing is left to time (a backlog
        processed within one report, or a worker holding nothing before the end)."""
        if since is None or end_t <= since[0] or end_events <= since[1]:
            return None
        return round((end_events - since[1]) / (end_t - since[0]))

    cpu_us = (end_cpu - first[2]) / (end_events - first[1]) * 1e6 if end_events > first[1] else None
    return {
        "workers": workers,
        "events": backlog.events,
        "events_processed": end_events,
        "events_per_s": rate(steady),
        "events_per_s_incl_rebalance": rate(first),
        "cpu_us_per_event": round(cpu_us, 2) if cpu_us is not None else None,
        "steady_seconds": round(end_t - steady[0], 2) if steady else None,
        "seconds_to_lag_0": round(t - first[0], 2),
        # records are keyed by pool (as the producer keys them): the partitions, and so the
        # workers, get the pools' uneven traffic; the busiest worker bounds the speed-up
        "events_per_worker": shares,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    parser.add_argument("--app-id", help=argparse.SUPPRESS)
    parser.add_argument("--chdb", help=argparse.SUPPRESS)
    parser.add_argument("--workers", default="1,2", help="worker counts to compare")
    parser.add_argument("--timeout", type=float, default=600.0)
    add_backlog_arguments(parser, default_events=500_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.child:
        asyncio.run(_child(args))
        return
    if args.tiny and not args.backlog:  # enough to span a few 0.1 s reports
        args.events = min(args.events, 100_000)
    counts = [int(n) for n in args.workers.split(",")]
    results: dict[str, Any] = {}
    with backlog_for(args) as backlog:
        from stream_app.worker.topics import create_topics

        settings = _worker_settings(backlog.bootstrap, backlog.prefix, "bench-topics", 4)
        asyncio.run(create_topics(settings))  # the worker's other topics, once
        load_before = load_average()
        for n in counts:
            results[f"workers_{n}"] = drain(backlog, n, args.timeout)
            print(f"worker_scaling {n}: {json.dumps(results[f'workers_{n}'])}", flush=True)
    if len(counts) == 2:
        one, two = (results[f"workers_{n}"]["events_per_s"] for n in counts)
        results["scaling_factor"] = round(two / one, 2) if one and two else None
        per_worker = results[f"workers_{counts[1]}"]["events_per_worker"]
        results["busiest_share"] = round(max(per_worker) / max(1, sum(per_worker)), 2)
    path = write_result(
        "worker_scaling",
        {
            "load_average_before": load_before,
            "load_average_after": load_average(),
            "backlog": {"events": backlog.events, "partitions": backlog.partitions},
            **results,
        },
        tiny=args.tiny,
    )
    print(f"written {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
