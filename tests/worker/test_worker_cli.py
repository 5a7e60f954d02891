"""The commands, as an operator runs them (``python -m stream_app.cli_worker ...``): ``topics
create`` against the real broker, ``simulate`` producing through the real producer, and the
``worker`` refusing an invalid configuration with a message naming the setting."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped, unused-ignore]
from aiokafka.admin.config_resource import (  # type: ignore[import-untyped, unused-ignore]
    ConfigResource,
    ConfigResourceType,
)
from worker_kit import read_topic, unique_prefix

from schemas.column_batch import ColumnBatch, decode_any

REPO = Path(__file__).resolve().parents[2]


def _cli(
    *args: str, env: dict[str, str] | None = None, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stream_app.cli_worker", "--log-level", "WARNING", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        check=False,
    )


async def _describe(bootstrap: str, topic: str) -> tuple[int, dict[str, str]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        response = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    entries = response[0].resources[0][4]
    return len(described["partitions"]), {e[0]: e[1] for e in entries}


@pytest.mark.kafka
async def test_topics_create_uses_partitions_and_retention_from_settings(
    kafka_bootstrap: str,
) -> None:
    prefix = unique_prefix("cli-topics")
    env = {"PWM_WORKER_TOPICS__WINDOWS_RETENTION_HOURS": "5"}
    first = await asyncio.to_thread(
        _cli,
        "topics",
        "create",
        "--bootstrap-servers",
        kafka_bootstrap,
        "--topic-prefix",
        prefix,
        "--partitions",
        "5",
        env=env,
    )
    assert first.returncode == 0, first.stderr
    lines = dict(line.split(": ", 1) for line in first.stdout.strip().splitlines())
    assert lines == {
        f"{prefix}.requests": "created",
        f"{prefix}.requests.dlq": "created",
        f"{prefix}.windows": "created",
        f"{prefix}.alerts": "created",
    }
    partitions, config = await _describe(kafka_bootstrap, f"{prefix}.requests")
    assert partitions == 5
    assert config["retention.ms"] == str(168 * 3_600_000)
    _, windows = await _describe(kafka_bootstrap, f"{prefix}.windows")
    assert windows["retention.ms"] == str(5 * 3_600_000)

    again = await asyncio.to_thread(
        _cli,
        "topics",
        "create",
        "--bootstrap-servers",
        kafka_bootstrap,
        "--topic-prefix",
        prefix,
        "--partitions",
        "8",
    )
    assert again.returncode == 0, again.stderr
    assert f"{prefix}.requests: exists with 5 partitions (settings: 8)" in again.stdout
    assert f"{prefix}.alerts: exists" in again.stdout


@pytest.mark.kafka
@pytest.mark.slow
async def test_simulate_produces_the_events_it_reports(kafka_bootstrap: str) -> None:
    prefix = unique_prefix("cli-sim")
    created = await asyncio.to_thread(
        _cli,
        "topics",
        "create",
        "--bootstrap-servers",
        kafka_bootstrap,
        "--topic-prefix",
        prefix,
        "--partitions",
        "2",
    )
    assert created.returncode == 0, created.stderr
    run = await asyncio.to_thread(
        _cli,
        "simulate",
        "--bootstrap-servers",
        kafka_bootstrap,
        "--topic-prefix",
        prefix,
        "--rate",
        "1500",
        "--duration",
        "3",
        "--seed",
        "5",
    )
    assert run.returncode == 0, run.stderr
    summary = run.stdout.strip().splitlines()[-1]
    acknowledged = int(summary.split(" events emitted, ")[1].split(" acknowledged")[0])
    emitted = int(summary.split("simulate: ")[1].split(" events")[0])
    assert emitted == acknowledged > 3_000
    records = await read_topic(kafka_bootstrap, f"{prefix}.requests")
    batches = [decode_any(r.value) for r in records]
    # A simulated host sends columnar envelopes (schema v2) by default.
    assert all(isinstance(b, ColumnBatch) for b in batches)
    columns = [b for b in batches if isinstance(b, ColumnBatch)]
    assert sum(len(b) for b in columns) == emitted
    assert all(r.key == b.pool_name.encode() for r, b in zip(records, columns, strict=True))
    assert {b.pool_name for b in columns} == {"residential", "datacenter", "mobile", "isp"}


def test_worker_refuses_an_invalid_setting_naming_it() -> None:
    run = _cli("worker", env={"PWM_WORKER_PIPELINE__WINDOW_S": "0"}, timeout_s=60)
    assert run.returncode == 2
    assert "invalid configuration" in run.stderr
    assert "window_s" in run.stderr
