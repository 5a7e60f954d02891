"""``envelope_schema``: the producer sends columnar envelopes (schema v2) when asked, v1 otherwise.

What the consumers read is decoded here with their own decoder
(``schemas.column_batch.decode_any``): the events must come back exactly as emitted, under the
envelope's header and key.
"""

from __future__ import annotations

import threading

import pytest
from producer_sink import make_settings
from pydantic import ValidationError

from producer import InProcessTransport, MetricsProducer, Outcome
from producer.envelope import build_envelope
from schemas.column_batch import ColumnBatch, decode_any
from schemas.wire import WireBatch, WireEvent

_POOLS = ("pool-a", "pool-b", "pool-c")


class _Payloads:
    """Keeps what the transport is handed: (key, payload)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.records: list[tuple[str, bytes]] = []

    def deliver(self, pool: str, payload: bytes) -> None:
        with self.lock:
            self.records.append((pool, payload))


def _emit_all(producer: MetricsProducer, count: int) -> list[tuple[object, ...]]:
    """Emit ``count`` varied events; their fields as the consumer should see them."""
    emitted: list[tuple[object, ...]] = []
    for i in range(count):
        pool = _POOLS[i % 3]
        proxy = producer.proxy_id(f"10.0.{i % 7}.1:8080") if i % 4 else None
        status = (200, 503, None)[i % 3]
        domain = ("example.com", None)[i % 2]
        outcome = Outcome.SUCCESS if i % 5 else Outcome.TIMEOUT
        assert producer.emit(
            pool=pool,
            region=("eu", "us", "ap")[i % 3 - 1],
            proxy_id=proxy,
            outcome=outcome,
            latency_ms=i * 0.25,
            status_code=status,
            bytes_in=i,
            bytes_out=2 * i,
            attempts=1 + i % 3,
            target_domain=domain,
        )
        region = ("eu", "us", "ap")[i % 3 - 1]
        emitted.append(
            (pool, region, proxy, outcome, i * 0.25, status, i, 2 * i, 1 + i % 3, domain)
        )
    return emitted


def _fields(ev: WireEvent) -> tuple[object, ...]:
    return (
        ev.pool,
        ev.region,
        ev.proxy_id,
        ev.outcome,
        ev.latency_ms,
        ev.status_code,
        ev.bytes_in,
        ev.bytes_out,
        ev.attempts,
        ev.target_domain,
    )


def _run(count: int, **settings: object) -> tuple[list[tuple[object, ...]], _Payloads]:
    sink = _Payloads()
    producer = MetricsProducer(
        make_settings(batch_max_events=37, batch_max_age_ms=20, **settings),
        InProcessTransport(sink.deliver),
    )
    emitted = _emit_all(producer, count)
    assert producer.flush(timeout_s=20.0)
    producer.close()
    return emitted, sink


def test_v2_envelopes_decode_to_the_events_emitted() -> None:
    emitted, sink = _run(1_000, envelope_schema="v2")
    received: list[WireEvent] = []
    batch_ids: set[str] = set()
    for key, payload in sink.records:
        batch = decode_any(payload)
        assert isinstance(batch, ColumnBatch), payload[:80]
        assert batch.pool_name == key
        assert batch.source_host_name == "host-1"
        assert set(batch.pools) == {key}
        batch_ids.add(batch.batch_id)
        received.extend(batch.events())
    assert len(batch_ids) == len(sink.records) > 1
    assert len({ev.event_id for ev in received}) == len(received)
    assert sorted(map(_fields, received), key=repr) == sorted(emitted, key=repr)


def test_the_default_stays_v1() -> None:
    assert make_settings().envelope_schema == "v1"
    emitted, sink = _run(200)
    decoded = [decode_any(payload) for _, payload in sink.records]
    assert all(isinstance(b, WireBatch) for b in decoded)
    events = [ev for b in decoded if isinstance(b, WireBatch) for ev in b.events]
    assert sorted(map(_fields, events), key=repr) == sorted(emitted, key=repr)


def test_an_unknown_schema_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValidationError, match="envelope_schema"):
        make_settings(envelope_schema="v3")


def test_both_schemas_carry_the_same_header_and_events() -> None:
    events = [
        WireEvent(
            event_id=f"e{i}",
            ts_ms=1_800_000_000_000 + i,
            pool="pool-a",
            region=("eu", "us")[i % 2],
            outcome=Outcome.SUCCESS,
            latency_ms=1.5 * i,
            source_host="host-1",
            proxy_id="9f86d081884c7d65" if i % 2 else None,
            status_code=200 if i % 3 else None,
        )
        for i in range(5)
    ]
    v1 = build_envelope("pool-a", events, source_host="host-1", batch_id="b-1")
    v2 = build_envelope("pool-a", events, source_host="host-1", batch_id="b-1", schema="v2")
    one, two = decode_any(v1.payload), decode_any(v2.payload)
    assert isinstance(one, WireBatch)
    assert isinstance(two, ColumnBatch)
    assert (v2.pool, v2.batch_id, v2.event_count) == (v1.pool, v1.batch_id, v1.event_count)
    assert (two.batch_id, two.source_host_name, two.pool_name) == ("b-1", "host-1", "pool-a")
    assert two.events() == one.events == events
