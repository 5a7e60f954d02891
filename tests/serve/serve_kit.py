"""Helpers of the serve tests: a real ``proxywhirl-metrics serve`` child process, CLI runs,
reads of its store once it stopped, and envelopes built the way the producer builds them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped, unused-ignore]
from fastapi.testclient import TestClient

from stream_app.embedded.handoff import RecordHandoff
from stream_app.serve.inbox import IngestInbox
from stream_app.serve.ingestor import EmbeddedIngestor
from stream_app.storage.client import StorageClient
from stream_app.storage.engines import quote_identifier
from stream_app.storage.settings import StorageSettings
from tests.support.ports import LOOPBACK, free_port, wait_until
from tests.support.process import ManagedProcess

INGEST_TOKEN = "ingest-token-for-tests-0123456789"
READ_TOKEN = "read-token-for-tests-0123456789"
TOKENS = json.dumps(
    [
        {"name": "fleet", "token": INGEST_TOKEN, "roles": ["ingest"]},
        {"name": "viewer", "token": READ_TOKEN, "roles": ["read"]},
    ]
)
FAST_WINDOWS = {
    "PWM_PIPELINE__WINDOW_S": "2",
    "PWM_PIPELINE__GRACE_MS": "60000",
    "PWM_PIPELINE__PROXY_WINDOW_S": "10",
    "PWM_PIPELINE__FLUSH_INTERVAL_MS": "250",
}
_REPO = Path(__file__).resolve().parents[2]

# The in-process ingest rig (conftest.rig): limits small enough to reach in a test.
MAX_BODY_BYTES = 64 * 1024
MAX_DECODED_BYTES = 256 * 1024
RETRY_AFTER_S = 3
QUEUE_RECORDS = 2


@dataclass
class IngestRig:
    client: TestClient
    ingestor: EmbeddedIngestor
    handoff: RecordHandoff
    inbox: IngestInbox
    storage: StorageClient
    storage_settings: StorageSettings

    @property
    def database(self) -> str:
        return self.storage_settings.database

    def dead_letters(self) -> list[tuple[object, ...]]:
        return self.storage.rows(
            "SELECT batch_id, event_index, reason, payload FROM "
            f"{quote_identifier(self.database)}.ingest_dead_letters "
            "ORDER BY batch_id, event_index"
        )


def cli_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "stream_app.cli", "--log-level", "WARNING", *args]


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PWM_")}
    return {**env, "PWM_API_TOKENS": TOKENS, **FAST_WINDOWS, **(extra or {})}


def run_cli(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_argv(*args),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=child_env(),
        cwd=_REPO,
        check=False,
    )


class ServeServer:
    """One ``serve`` on a data directory and a fixed port (kept across restarts)."""

    def __init__(self, data_dir: Path, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.process = ManagedProcess(
            "serve",
            cli_argv("serve", "--data-dir", str(data_dir), "--port", str(self.port)),
            log_path=log_path,
            cwd=_REPO,
            env=child_env(env),
        )

    def start(self, timeout_s: float = 60) -> None:
        self.process.start()
        if not wait_until(self.ready, timeout_s=timeout_s, abort=self.process.exit_reason):
            raise AssertionError(f"serve did not answer:\n{self.process.log_tail()}")

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> int | None:
        return self.process.terminate(30.0)

    def kill(self) -> int | None:
        return self.process.kill()


def store_rows(data_dir: Path, sql: str) -> list[list[Any]]:
    """Rows of ``sql`` on the stopped store of ``data_dir`` (read by a child process: this
    process may hold another chDB path)."""
    script = (
        "import json, sys\n"
        "from stream_app.storage.client import get_client\n"
        "from stream_app.storage.settings import StorageSettings\n"
        "client = get_client(StorageSettings(data_dir=sys.argv[1]))\n"
        "print(json.dumps([list(r) for r in client.rows(sys.argv[2])], default=str))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(data_dir), sql],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=_REPO,
        env=child_env(),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rows: list[list[Any]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return rows


def stored_requests(data_dir: Path) -> dict[str, int]:
    """Requests per pool stored in the 10 s table (every partial sum added up)."""
    rows = store_rows(
        data_dir, "SELECT pool, sum(requests) FROM proxywhirl.agg_10s GROUP BY pool ORDER BY pool"
    )
    return {str(pool): int(total) for pool, total in rows}


def event(
    i: int, *, pool: str = "pool-a", latency_ms: float = 10.0, **extra: Any
) -> dict[str, Any]:
    now_ms = time.time_ns() // 1_000_000
    doc: dict[str, Any] = {
        "event_id": f"ev-{i}",
        "ts_ms": now_ms,
        "pool": pool,
        "region": "eu-west",
        "outcome": "success",
        "latency_ms": latency_ms,
        "source_host": "host-1",
    }
    doc.update(extra)
    return doc


def envelope(
    batch_id: str, events: Sequence[dict[str, Any]], *, pool: str = "pool-a"
) -> dict[str, Any]:
    return {
        "batch_id": batch_id,
        "source_host": "host-1",
        "pool": pool,
        "sent_ms": time.time_ns() // 1_000_000,
        "events": list(events),
    }


async def topic_records(bootstrap: str, topic: str) -> list[tuple[bytes, bytes]]:
    """Key and value of every record of partition 0 of ``topic``, from the beginning to its end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        out: list[tuple[bytes, bytes]] = []
        while await consumer.position(tp) < end:
            for batch in (await consumer.getmany(tp, timeout_ms=1000)).values():
                out.extend((r.key, r.value) for r in batch)
        return out
    finally:
        await consumer.stop()
