"""Test doubles for the producer tests: a decoding sink and scripted transports."""

from __future__ import annotations

import threading
from collections.abc import Callable

from producer import ProducerSettings
from schemas.wire import WireBatch, WireEvent, decode_batch

FLEET_KEY = "test-fleet-key-0123456789"


def make_settings(**overrides: object) -> ProducerSettings:
    values: dict[str, object] = {
        "source_host": "host-1",
        "fleet_key": FLEET_KEY,
        "close_at_exit": False,
        "retry_initial_ms": 5,
        "retry_max_ms": 50,
    }
    values.update(overrides)
    return ProducerSettings(**values)  # type: ignore[arg-type]


class Sink:
    """Decodes every envelope it is handed (as the pipeline would) and keeps them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.batches: list[WireBatch] = []
        self.payload_pools: list[str] = []

    def deliver(self, pool: str, payload: bytes) -> None:
        batch = decode_batch(payload)
        with self._cond:
            self.payload_pools.append(pool)
            self.batches.append(batch)
            self._cond.notify_all()

    @property
    def events(self) -> list[WireEvent]:
        with self._cond:
            return [ev for b in self.batches for ev in b.events]

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(predicate, timeout_s)

    def wait_for_events(self, count: int, timeout_s: float = 10.0) -> bool:
        return self.wait_for(lambda: sum(len(b.events) for b in self.batches) >= count, timeout_s)


class ScriptedTransport:
    """Raises the scripted exceptions on successive send() calls, then delivers to a Sink."""

    def __init__(self, sink: Sink, failures: list[Exception]) -> None:
        self.sink = sink
        self.failures = list(failures)
        self.attempts = 0
        self.closed = 0
        self.gate = threading.Event()
        self.gate.set()

    def send(self, pool: str, payload: bytes, event_count: int) -> None:
        self.gate.wait()
        self.attempts += 1
        if self.failures:
            raise self.failures.pop(0)
        self.sink.deliver(pool, payload)

    def close(self) -> None:
        self.closed += 1
