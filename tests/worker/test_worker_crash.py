"""Effectively once across ``kill -9``: a worker dies while a few hundred thousand events are
in flight, a new one takes over, and every (pool, region, window) total in ClickHouse equals
what the producer was given. The windows topic's latest record of every window is complete too
(the new worker restores the windows that were open from storage).

The worker is a subprocess (``python -m stream_app.cli_worker worker --config FILE``) with its
own chDB path; the second worker reopens that path after the first one is dead, as a restarted
container would. The test process (which hosts its own chDB engine) reads the store through a
short-lived helper process once the second worker has stopped.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from worker_kit import (
    FAST_PIPELINE,
    WINDOW_S,
    all_committed,
    differences,
    emit_range,
    end_offsets,
    fleet_scenario,
    group_offsets,
    kafka_producer,
    read_topic,
    truth,
    unique_prefix,
    wait_until,
    worker_settings,
)

from stream_app.simulator import FleetSimulator
from stream_app.worker.topics import create_topics
from tests.support.ports import free_port
from tests.support.process import ManagedProcess

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
PARTITIONS = 4
SPAN_MS = 30_000
RATE_PER_POOL = 2_500.0  # 4 pools: 10k events/s of event time, 300k events in all
DATABASE = "crash"


def _metrics(port: int) -> dict[str, float]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return {}
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def _worker(name: str, config: Path, port: int, log_dir: Path) -> ManagedProcess:
    return ManagedProcess(
        name,
        [
            sys.executable,
            "-m",
            "stream_app.cli_worker",
            "--log-level",
            "INFO",
            "worker",
            "--config",
            str(config),
            "--metrics-port",
            str(port),
        ],
        log_path=log_dir / f"{name}.log",
        cwd=REPO,
        # Not traced by coverage: a worker killed with SIGKILL leaves no coverage data anyway,
        # and tracing slows the worker several-fold on a 2-core machine.
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")},
            "PYTHONPATH": str(REPO),
        },
    )


async def _wait_metric(
    proc: ManagedProcess, port: int, name: str, at_least: float, timeout_s: float
) -> dict[str, float]:
    deadline = time.monotonic() + timeout_s
    while True:
        values = await asyncio.to_thread(_metrics, port)
        if values.get(name, -1) >= at_least:
            return values
        assert proc.running, f"worker exited:\n{proc.log_tail()}"
        assert time.monotonic() < deadline, f"{name} < {at_least}:\n{proc.log_tail()}"
        await asyncio.sleep(0.2)


def _dump(dsn: str, source: str, start_ms: int, end_ms: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "tests/worker/worker_store_dump.py"),
            dsn,
            DATABASE,
            source,
            str(start_ms),
            str(end_ms),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


async def test_kill_9_while_events_are_in_flight_then_restart_totals_exact(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = unique_prefix("crash")
    settings = worker_settings(kafka_bootstrap, prefix, partitions=PARTITIONS)
    await create_topics(settings)
    dsn = f"chdb://{tmp_path / 'chdb'}"
    config = tmp_path / "worker.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "worker": {
                    "bootstrap_servers": kafka_bootstrap,
                    "topic_prefix": prefix,
                    "app_id": prefix,
                    "pipeline": FAST_PIPELINE,
                    "topics": {"requests_partitions": PARTITIONS},
                    "broker_session_timeout_s": 10,
                    "broker_heartbeat_interval_s": 1,
                    "broker_request_timeout_s": 20,
                    "broker_rebalance_timeout_s": 20,
                    "broker_stall_ms": 2_500,
                },
                "storage": {"dsn": dsn, "database": DATABASE},
            }
        )
    )
    origin = time.time_ns() // 1_000_000 - SPAN_MS
    sim = FleetSimulator(fleet_scenario(RATE_PER_POOL), seed=11, origin_ms=origin)
    events = list(sim.events_between(origin, origin + SPAN_MS))
    assert len(events) > 250_000

    port = free_port()
    first = _worker("worker-1", config, port, tmp_path)
    first.start()
    second: ManagedProcess | None = None
    producer, _ = kafka_producer(kafka_bootstrap, prefix)
    try:
        await _wait_metric(first, port, "proxywhirl_worker_assigned_partitions", PARTITIONS, 90)
        emitting = asyncio.create_task(
            asyncio.to_thread(emit_range, producer, sim, origin, origin + SPAN_MS)
        )
        # Kill it once it has aggregated a third of the stream: part stored and committed,
        # part aggregated only, the rest still in Kafka or still being produced.
        await _wait_metric(first, port, "proxywhirl_worker_events_total", len(events) / 3, 120)
        first.kill()
        committed = sum((await group_offsets(kafka_bootstrap, prefix)).values())
        produced = sum(
            (await end_offsets(kafka_bootstrap, settings.requests_topic, PARTITIONS)).values()
        )
        assert 0 < committed < produced, (committed, produced)
        assert await emitting == len(events)
        assert await asyncio.to_thread(producer.flush, 60.0)

        second = _worker("worker-2", config, port, tmp_path)
        second.start()
        await wait_until(
            lambda: all_committed(kafka_bootstrap, prefix, settings.requests_topic, PARTITIONS),
            timeout_s=150,
            what="the second worker to store and commit everything",
        )
        # The latest published record of every pool x region window is the complete window
        # (windows open at the kill were restored from storage by the second worker).
        expected = {k: v[0] for k, v in truth(events, WINDOW_S).items()}
        latest: dict[tuple[str, str, int], int] = {}

        async def windows_complete() -> bool:
            for record in await read_topic(kafka_bootstrap, settings.windows_topic, idle_ms=500):
                window = json.loads(record.value)
                scope = window["scope"]
                if scope["proxy_id"] is None:
                    key = (scope["pool"], scope["region"], window["window_start_ms"])
                    latest[key] = window["requests"]
            return all(key in latest for key in expected)

        await wait_until(windows_complete, timeout_s=120, what="every window published")
        second.terminate(30.0)
        assert second.returncode == 0, second.log_tail()
    finally:
        await asyncio.to_thread(producer.close, 10.0)
        first.kill()
        if second is not None:
            second.kill()

    doc = await asyncio.to_thread(
        _dump, dsn, settings.requests_topic, origin - 60_000, origin + SPAN_MS + 60_000
    )
    got = {(p, r, ws): (n, ok, b) for p, r, ws, n, ok, b in doc["windows"]}
    assert differences(truth(events), got) == []
    assert {k: latest[k] for k in expected} == expected
