"""Columnar envelopes (schema v2) over HTTP: taken whole and counted as columns, deduplicated by
``batch_id``, replayed from the inbox after a restart, refused whole (422 problem+json naming the
field) when malformed; forwarded as sent by the stateless API to Kafka; the producer's v2
envelopes through a real ``serve`` into exact totals."""

from __future__ import annotations

import asyncio
import json
import struct
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from serve_kit import (
    INGEST_TOKEN,
    TOKENS,
    IngestRig,
    ServeServer,
    stored_requests,
    topic_records,
)

from api.app import create_app
from api.routes.ingest import ingest_router
from api.settings import ApiSettings
from producer import MetricsProducer, ProducerSettings
from producer.columnar import encode_columnar
from producer.envelope import build_envelope
from producer.http_transport import HttpTransport, HttpTransportSettings
from producer.kafka_settings import KafkaTransportSettings
from schemas.column_batch import ColumnBatch, decode_any
from schemas.events import Outcome
from schemas.wire import WireEvent
from stream_app.dead_letters import FileDeadLetters
from stream_app.embedded.handoff import DecodedRecord
from stream_app.embedded.pipeline import EmbeddedPipeline, wall_clock_ms
from stream_app.serve.dead_letters import IngestDeadLetters
from stream_app.serve.forwarder import KafkaForwarder
from stream_app.serve.ingestor import InboxTrimmingSink
from stream_app.serve.settings import IngestSettings
from stream_app.settings import PipelineSettings
from stream_app.storage.client import StorageClient
from stream_app.storage.engines import quote_identifier
from stream_app.storage.queries import StorageQueries
from stream_app.storage.settings import StorageSettings
from stream_app.storage.sink import ClickHouseSink
from tests.support.kafka import TopicFactory
from tests.support.ports import wait_until

PATH = "/api/v1/ingest"
AUTH = {"authorization": f"Bearer {INGEST_TOKEN}", "content-type": "application/json"}


def _events(count: int, *, pool: str = "pool-a", tag: str = "e") -> list[WireEvent]:
    now_ms = time.time_ns() // 1_000_000
    return [
        WireEvent(
            event_id=f"{tag}-{i}",
            ts_ms=now_ms - i,
            pool=pool,
            region=("eu-west", "us-east")[i % 2],
            outcome=Outcome.SUCCESS if i % 3 else Outcome.TIMEOUT,
            latency_ms=1.5 + i,
            source_host="host-1",
            proxy_id=f"{i % 4:016x}" if i % 2 else None,
            status_code=200 if i % 3 else None,
        )
        for i in range(count)
    ]


def _v2(batch_id: str, events: list[WireEvent], pool: str = "pool-a") -> bytes:
    return build_envelope(
        pool, events, source_host="host-1", batch_id=batch_id, schema="v2"
    ).payload


def _v2_arrays(batch_id: str, events: list[WireEvent], pool: str = "pool-a") -> bytes:
    """A v2 envelope with its numeric columns as JSON arrays (the producer packs them)."""
    return encode_columnar(
        events, batch_id=batch_id, source_host="host-1", pool=pool, sent_ms=1, packed=False
    )


def _post(rig: IngestRig, body: bytes) -> Any:
    return rig.client.post(PATH, content=body, headers=AUTH)


def _pipeline(rig: IngestRig, tmp_path: Path) -> EmbeddedPipeline:
    sink = InboxTrimmingSink(ClickHouseSink(rig.storage, rig.storage_settings), rig.inbox)
    return EmbeddedPipeline(
        PipelineSettings(), sink, FileDeadLetters(tmp_path / "dead-letters.jsonl")
    )


def _stored(rig: IngestRig) -> dict[tuple[str, str], int]:
    rows = rig.storage.rows(
        f"SELECT pool, region, sum(requests) FROM {quote_identifier(rig.database)}.agg_10s "
        "GROUP BY pool, region ORDER BY pool, region"
    )
    return {(str(p), str(r)): int(n) for p, r, n in rows}


def test_a_v2_envelope_is_taken_as_columns_stored_exactly_and_deduplicated(
    rig: IngestRig, tmp_path: Path
) -> None:
    rig.ingestor.recover(rig.storage, rig.database)
    events = _events(41)
    body = _v2("v2-1", events)
    response = _post(rig, body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "accepted": 41,
        "refused": [],
        "duplicate": False,
        "batch_id": "v2-1",
    }
    (queued,) = rig.handoff.take(10)
    assert isinstance(queued, DecodedRecord)
    assert queued.columns is not None, "a v2 envelope must reach the pipeline as columns"
    assert queued.events == []
    assert queued.columns.events() == events
    # The retry (its answer was lost) is a duplicate: nothing queued twice.
    again = _post(rig, body)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["accepted"] == 0
    assert rig.handoff.take(10) == []
    assert rig.dead_letters() == []
    # Aggregated and stored: exact totals per scope.
    pipeline = _pipeline(rig, tmp_path)
    pipeline.process_decoded(queued, wall_clock_ms())
    rig.handoff.done(1)
    asyncio.run(pipeline.flush_and_close())
    assert _stored(rig) == {("pool-a", "eu-west"): 21, ("pool-a", "us-east"): 20}
    assert rig.ingestor.counters.events_accepted == 41


def test_v2_records_of_the_inbox_are_replayed_as_columns(rig: IngestRig, tmp_path: Path) -> None:
    rig.ingestor.recover(rig.storage, rig.database)
    assert _post(rig, _v2("v2-a", _events(10, tag="a"))).status_code == 200
    assert _post(rig, _v2("v2-b", _events(5, tag="b"))).status_code == 200
    rig.handoff.done(len(rig.handoff.take(10)))  # the first run dies before aggregating them
    assert rig.ingestor.recover(rig.storage, rig.database) == 2
    replayed = rig.handoff.take(10)
    pipeline = _pipeline(rig, tmp_path)
    for record in replayed:
        assert isinstance(record, DecodedRecord)
        assert record.columns is not None
        pipeline.process_decoded(record, wall_clock_ms())
    asyncio.run(pipeline.flush_and_close())
    assert sum(_stored(rig).values()) == 15
    assert rig.inbox.pending_count() == 0


def _bad_region_index(body: bytes) -> bytes:
    doc = json.loads(body)
    doc["columns"]["region"][0] = 9
    return json.dumps(doc).encode()


def _short_column(body: bytes) -> bytes:
    doc = json.loads(body)
    doc["columns"]["latency_ms"].pop()
    return json.dumps(doc).encode()


def _private_label(body: bytes) -> bytes:
    doc = json.loads(body)
    doc["dictionaries"]["region"][1] = "10.1.2.3"
    return json.dumps(doc).encode()


def _wrong_type(body: bytes) -> bytes:
    doc = json.loads(body)
    doc["columns"]["ts_ms"][3] = "soon"
    return json.dumps(doc).encode()


def _packed(values: list[int]) -> str:
    return struct.pack(f"<{len(values)}q", *values).hex()


def _packed_bad_region_index(body: bytes) -> bytes:
    doc = json.loads(_v2_to_packed(body))
    regions = list(struct.unpack("<6q", bytes.fromhex(doc["columns"]["region"])))
    doc["columns"]["region"] = _packed([9, *regions[1:]])
    return json.dumps(doc).encode()


def _packed_short_column(body: bytes) -> bytes:
    doc = json.loads(_v2_to_packed(body))
    doc["columns"]["bytes_in"] = _packed([1, 2, 3])
    return json.dumps(doc).encode()


def _v2_to_packed(body: bytes) -> bytes:
    doc = json.loads(body)
    batch = decode_any(body)
    assert isinstance(batch, ColumnBatch)
    return encode_columnar(
        batch.events(),
        batch_id=doc["batch_id"],
        source_host=doc["source_host"],
        pool=doc["pool"],
        sent_ms=doc["sent_ms"],
    )


@pytest.mark.parametrize(
    ("spoil", "field"),
    [
        (_bad_region_index, "$.columns.region[0]"),
        (_short_column, "$.columns.latency_ms"),
        (_private_label, "$.dictionaries.region[1]"),
        (_wrong_type, "$.columns.ts_ms[3]"),
        (_packed_bad_region_index, "$.columns.region[0]"),
        (_packed_short_column, "$.columns.bytes_in"),
    ],
    ids=["index", "length", "privacy", "type", "packed-index", "packed-length"],
)
def test_a_malformed_v2_envelope_is_refused_whole_naming_the_field(
    rig: IngestRig, tmp_path: Path, spoil: Any, field: str
) -> None:
    rig.ingestor.recover(rig.storage, rig.database)
    good = _v2_arrays("v2-bad", _events(6))
    bad = spoil(good)
    response = _post(rig, bad)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    doc = response.json()
    assert doc["accepted"] == 0
    assert doc["duplicate"] is False
    (refusal,) = doc["refused"]
    assert refusal["index"] is None
    assert f"`{field}`" in refusal["reason"]
    assert field in doc["detail"]
    ((batch_id, index, reason, payload),) = rig.dead_letters()
    assert (batch_id, index, payload) == ("v2-bad", -1, bad.decode())
    assert field in str(reason)
    # Nothing was taken: no record queued, and the batch id is not remembered.
    assert rig.handoff.take(10) == []
    assert rig.inbox.pending_count() == 0
    fixed = _post(rig, good)
    assert fixed.json() == {"accepted": 6, "refused": [], "duplicate": False, "batch_id": "v2-bad"}


@pytest.mark.kafka
async def test_the_stateless_api_forwards_a_v2_envelope_as_sent(
    kafka_bootstrap: str,
    kafka_topic_factory: TopicFactory,
    serve_storage: tuple[StorageSettings, StorageClient],
) -> None:
    prefix = f"fw2-{uuid.uuid4().hex[:8]}"
    topic = await kafka_topic_factory(1, name=f"{prefix}.requests")
    settings, storage = serve_storage
    forwarder = KafkaForwarder(
        IngestSettings(),
        KafkaTransportSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix),
        IngestDeadLetters(storage, settings.database),
    )
    try:
        client = TestClient(
            create_app(
                ApiSettings(tokens=json.loads(TOKENS)),
                StorageQueries(storage, settings.database),
                routers=[ingest_router(forwarder, max_body_bytes=1 << 20)],
            )
        )
        events = _events(12, pool="pool-b")
        body = _v2("fw2-1", events, pool="pool-b")
        bad = _bad_region_index(_v2_arrays("fw2-2", events, pool="pool-b"))
        for payload, status, accepted in ((body, 200, 12), (bad, 422, 0), (body, 200, 0)):
            response = await asyncio.to_thread(client.post, PATH, content=payload, headers=AUTH)
            assert response.status_code == status, response.text
            assert response.json()["accepted"] == accepted
        assert response.json()["duplicate"] is True
    finally:
        forwarder.close()
    ((key, value),) = await topic_records(kafka_bootstrap, topic)
    assert (key, value) == (b"pool-b", body)
    decoded = decode_any(value)
    assert isinstance(decoded, ColumnBatch)
    assert decoded.events() == events


@pytest.mark.slow
def test_a_v2_producer_into_serve_stores_every_event_once(tmp_path: Path) -> None:
    server = ServeServer(tmp_path / "data", tmp_path / "serve.log")
    server.start()
    pools = ("pool-a", "pool-b", "pool-c")
    sent = dict.fromkeys(pools, 0)
    try:
        transport = HttpTransport(
            HttpTransportSettings(
                url=server.url, token=INGEST_TOKEN, spool_path=tmp_path / "spool.sqlite"
            )
        )
        producer = MetricsProducer(
            ProducerSettings(
                source_host="host-1",
                fleet_key="k" * 32,
                envelope_schema="v2",
                batch_max_events=200,
                batch_max_age_ms=50,
                close_at_exit=False,
            ),
            transport,
        )
        for i in range(3_000):
            pool = pools[i % 3]
            assert producer.emit(
                pool=pool,
                region=("eu-west", "us-east")[i % 2],
                proxy_id=producer.proxy_id(f"10.0.0.{i % 9}:3128") if i % 5 else None,
                latency_ms=5.0 + i % 50,
                status_code=200,
            )
            sent[pool] += 1
        assert producer.flush(30.0), "the producer kept unsent envelopes"
        assert wait_until(
            lambda: (s := transport.stats()).spool_rows == 0 and s.in_flight_bytes == 0,
            timeout_s=60,
        ), f"envelopes still spooled: {transport.stats()}"
        producer.close(10.0)
        stats = transport.stats()
        assert stats.sent_events == 3_000
        assert stats.refused_events == 0
        assert stats.dropped_rejected_events == 0
    finally:
        assert server.stop() == 0, server.process.log_tail()
    assert stored_requests(server.data_dir) == sent
