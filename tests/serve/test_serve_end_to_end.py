"""The producer's HttpTransport into a real ``serve`` process into chDB: exact totals, through
a SIGKILL of the server while it ingests and a restart (spool plus idempotent ingest)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from serve_kit import INGEST_TOKEN, ServeServer, envelope, event, stored_requests

from producer import MetricsProducer, ProducerSettings
from producer.http_transport import HttpTransport, HttpTransportSettings
from tests.support.ports import wait_until

pytestmark = pytest.mark.slow

_POOLS = ("pool-a", "pool-b", "pool-c")


def _producer(server: ServeServer, spool: Path) -> tuple[MetricsProducer, HttpTransport]:
    transport = HttpTransport(
        HttpTransportSettings(
            url=server.url,
            token=INGEST_TOKEN,
            spool_path=spool,
            retry_initial_ms=50,
            retry_max_ms=500,
            timeout_s=5.0,
        )
    )
    producer = MetricsProducer(
        ProducerSettings(
            source_host="host-1",
            fleet_key="k" * 32,
            batch_max_events=200,
            batch_max_age_ms=50,
            close_at_exit=False,
        ),
        transport,
    )
    return producer, transport


def _emit(producer: MetricsProducer, count: int, rate_per_s: float) -> dict[str, int]:
    sent = dict.fromkeys(_POOLS, 0)
    start = time.monotonic()
    for i in range(count):
        pool = _POOLS[i % len(_POOLS)]
        assert producer.emit(pool=pool, region="eu-west", latency_ms=5.0 + i % 50)
        sent[pool] += 1
        if i % 100 == 99:
            ahead_s = (i + 1) / rate_per_s - (time.monotonic() - start)
            if ahead_s > 0:
                time.sleep(ahead_s)
    return sent


def _drain(producer: MetricsProducer, transport: HttpTransport) -> None:
    assert producer.flush(30.0), "the producer kept unsent envelopes"
    assert wait_until(
        lambda: (s := transport.stats()).spool_rows == 0 and s.in_flight_bytes == 0,
        timeout_s=60,
    ), f"envelopes still spooled: {transport.stats()}"
    producer.close(10.0)


def test_http_transport_into_serve_stores_every_event_once(tmp_path: Path) -> None:
    server = ServeServer(tmp_path / "data", tmp_path / "serve.log")
    server.start()
    try:
        producer, transport = _producer(server, tmp_path / "spool.sqlite")
        sent = _emit(producer, 6_000, rate_per_s=20_000)
        _drain(producer, transport)
        stats = transport.stats()
        assert stats.sent_events == sum(sent.values())
        assert stats.dropped_rejected_events == 0
        assert stats.refused_events == 0
        metrics = httpx.get(f"{server.url}/metrics", timeout=5).text
        assert f"pwm_ingest_events_accepted_total {float(sum(sent.values()))}" in metrics
    finally:
        assert server.stop() == 0, server.process.log_tail()
    assert stored_requests(server.data_dir) == sent


def test_serve_killed_while_ingesting_and_restarted_keeps_every_total_exact(
    tmp_path: Path,
) -> None:
    server = ServeServer(tmp_path / "data", tmp_path / "serve.log")
    server.start()
    producer, transport = _producer(server, tmp_path / "spool.sqlite")
    sent: dict[str, int] = {}
    emitter = threading.Thread(
        target=lambda: sent.update(_emit(producer, 24_000, rate_per_s=6_000)), daemon=True
    )
    try:
        emitter.start()
        # Kill it mid-stream, once it has taken (and acknowledged) a good part.
        assert wait_until(lambda: transport.stats().sent_events >= 6_000, timeout_s=60)
        server.kill()
        # While it is down, envelopes go to the producer's spool.
        assert wait_until(lambda: transport.stats().spool_rows > 0, timeout_s=30)
        server.start()
        emitter.join(60)
        assert not emitter.is_alive()
        _drain(producer, transport)
    finally:
        code = server.stop()
    assert code == 0, server.process.log_tail()
    stats = transport.stats()
    assert stats.sent_events == sum(sent.values()) == 24_000
    assert stats.send_errors_retriable > 0, "the kill went unnoticed: nothing was retried"
    assert stored_requests(server.data_dir) == sent


def test_an_acknowledged_envelope_survives_a_kill_and_its_retry_counts_once(
    tmp_path: Path,
) -> None:
    # Flushes far apart: the kill surely comes between the answer and the flush.
    server = ServeServer(
        tmp_path / "data", tmp_path / "serve.log", env={"PWM_PIPELINE__FLUSH_INTERVAL_MS": "60000"}
    )
    server.start()
    body = envelope("batch-1", [event(i) for i in range(50)])
    headers = {"authorization": f"Bearer {INGEST_TOKEN}"}
    try:
        first = httpx.post(f"{server.url}/api/v1/ingest", json=body, headers=headers)
        assert first.status_code == 200
        assert first.json()["accepted"] == 50
        server.kill()  # acknowledged, maybe not yet flushed: the inbox has it
        server.start()
        assert "1 acknowledged records not yet stored were replayed" in server.process.log_tail()
        again = httpx.post(f"{server.url}/api/v1/ingest", json=body, headers=headers)
        assert again.status_code == 200
        assert again.json()["duplicate"] is True
        assert again.json()["accepted"] == 0
    finally:
        assert server.stop() == 0, server.process.log_tail()
    assert stored_requests(server.data_dir) == {"pool-a": 50}
