"""The HTTP transport against a real HTTP server on loopback whose answers each test scripts:
compression and token, spooling while the server is down or busy (Retry-After honoured), replay,
poison answers dropped and counted, a durable spool surviving a restart of the producer."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cramjam
import pytest

from producer import MetricsProducer, ProducerSettings
from producer.http_transport import HttpTransport, HttpTransportSettings
from tests.support.ports import LOOPBACK, free_port, wait_until

TOKEN = "producer-test-token-0123456789"
Answer = tuple[int, dict[str, str], dict[str, Any]]


@dataclass
class FakeIngest:
    """A real HTTP server; ``answer(batch)`` decides each reply (default 200)."""

    port: int
    answer: Callable[[dict[str, Any]], Answer] = lambda batch: (200, {}, {"accepted": 1})
    batches: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def batch_ids(self) -> list[str]:
        with self.lock:
            return [b["batch_id"] for b in self.batches]


def _serve(fake: FakeIngest) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["content-length"]))
            encoding = self.headers.get("content-encoding")
            if encoding == "zstd":
                raw = bytes(cramjam.zstd.decompress(raw))
            elif encoding == "gzip":
                raw = gzip.decompress(raw)
            batch = json.loads(raw)
            status, extra_headers, doc = fake.answer(batch)
            with fake.lock:
                fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                if status == 200:
                    fake.batches.append(batch)
            body = json.dumps(doc).encode()
            self.send_response(status)
            for name, value in extra_headers.items():
                self.send_header(name, value)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((LOOPBACK, fake.port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def fake() -> Iterator[FakeIngest]:
    fake = FakeIngest(free_port())
    server = _serve(fake)
    yield fake
    server.shutdown()
    server.server_close()


def _producer(url: str, **overrides: Any) -> tuple[MetricsProducer, HttpTransport]:
    values: dict[str, Any] = {
        "url": url,
        "token": TOKEN,
        "retry_initial_ms": 20,
        "retry_max_ms": 200,
        "timeout_s": 2.0,
        "compress_min_bytes": 0,
    }
    values.update(overrides)
    transport = HttpTransport(HttpTransportSettings(**values))
    producer = MetricsProducer(
        ProducerSettings(
            source_host="host-1",
            fleet_key="k" * 32,
            batch_max_events=10,
            batch_max_age_ms=3_600_000,
            close_at_exit=False,
        ),
        transport,
    )
    return producer, transport


def _emit(producer: MetricsProducer, count: int) -> None:
    for i in range(count):
        assert producer.emit(pool="pool-a", region="eu", latency_ms=1.0, bytes_in=i)
    assert producer.flush(10.0)


@pytest.mark.parametrize("compression", ["zstd", "gzip", "none"])
def test_envelopes_arrive_compressed_with_the_token(fake: FakeIngest, compression: str) -> None:
    producer, transport = _producer(fake.url, compression=compression)
    _emit(producer, 30)
    assert wait_until(lambda: transport.stats().sent_events == 30, timeout_s=10)
    producer.close(5.0)
    assert sum(len(b["events"]) for b in fake.batches) == 30
    assert all(h["authorization"] == f"Bearer {TOKEN}" for h in fake.headers)
    assert {h.get("content-encoding", "none") for h in fake.headers} == {compression}
    assert transport.stats().spool_rows == 0


def test_a_busy_server_is_retried_after_its_retry_after_and_nothing_is_lost(
    fake: FakeIngest,
) -> None:
    refused_at: list[float] = []

    def busy_once_per_batch(batch: dict[str, Any]) -> Answer:
        if len(refused_at) < 3:
            refused_at.append(time.monotonic())
            return 429, {"Retry-After": "1"}, {"detail": "queue full"}
        return 200, {}, {"accepted": len(batch["events"])}

    fake.answer = busy_once_per_batch
    producer, transport = _producer(fake.url)
    _emit(producer, 30)
    assert wait_until(lambda: transport.stats().sent_events == 30, timeout_s=15)
    stats = transport.stats()
    assert stats.send_errors_retriable >= 1
    assert stats.spooled_batches >= 1
    assert stats.replayed_batches >= 1
    # Nothing was posted again sooner than the server asked.
    with fake.lock:
        first_accept = len(fake.batches)
    assert first_accept == 3
    assert time.monotonic() - refused_at[0] >= 1.0
    assert sorted(fake.batch_ids()) == sorted(set(fake.batch_ids()))
    producer.close(5.0)


def test_poison_answers_drop_and_count_refused_events_are_counted(fake: FakeIngest) -> None:
    def answer(batch: dict[str, Any]) -> Answer:
        if batch["events"][0]["bytes_in"] == 0:
            return 422, {}, {"detail": "bad", "refused": [{"index": 0, "reason": "x"}]}
        refused = [{"index": 0, "reason": "y"}]
        return 200, {}, {"accepted": len(batch["events"]) - 1, "refused": refused}

    fake.answer = answer
    producer, transport = _producer(fake.url)
    _emit(producer, 30)
    assert wait_until(lambda: transport.stats().sent_batches == 2, timeout_s=10)
    stats = transport.stats()
    assert stats.dropped_rejected_batches == 1
    assert stats.dropped_rejected_events == 10
    assert stats.refused_events == 1 + 2  # the poison one's and one per taken batch
    assert stats.sent_events == 18
    assert stats.spool_rows == 0
    producer.close(5.0)


def test_while_the_server_is_down_envelopes_are_spooled_durably_and_replayed(
    tmp_path: Path,
) -> None:
    port = free_port()
    spool = tmp_path / "spool.sqlite"
    producer, transport = _producer(f"http://{LOOPBACK}:{port}", spool_path=spool)
    _emit(producer, 40)
    assert wait_until(lambda: transport.stats().spool_rows == 4, timeout_s=10)
    assert not transport.stats().connected
    producer.close(1.0)  # nothing reachable: the spool keeps them across the restart
    assert transport.stats().dropped_closed_events == 0

    fake = FakeIngest(port)
    server = _serve(fake)
    try:
        producer, transport = _producer(fake.url, spool_path=spool)
        assert wait_until(lambda: transport.stats().spool_rows == 0, timeout_s=10)
        assert sum(len(b["events"]) for b in fake.batches) == 40
        assert len(set(fake.batch_ids())) == 4
        assert transport.stats().connected
        _emit(producer, 10)  # live again: straight to the server
        assert wait_until(lambda: len(fake.batches) == 5, timeout_s=10)
        producer.close(5.0)
    finally:
        server.shutdown()
        server.server_close()
