"""Distributed mode: the stateless API's ingest forwards validated records to the Kafka topic
(a real broker), keeps refusals as dead letters, and answers 503 while Kafka is unreachable."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from serve_kit import INGEST_TOKEN, TOKENS, envelope, event, topic_records

from api.app import create_app
from api.routes.ingest import ingest_router
from api.settings import ApiSettings
from producer.kafka_settings import KafkaTransportSettings
from schemas.wire import decode_batch
from stream_app.serve.dead_letters import IngestDeadLetters
from stream_app.serve.forwarder import KafkaForwarder
from stream_app.serve.settings import IngestSettings
from stream_app.storage.client import StorageClient
from stream_app.storage.engines import quote_identifier
from stream_app.storage.queries import StorageQueries
from stream_app.storage.settings import StorageSettings
from tests.support.kafka import TopicFactory
from tests.support.ports import free_port

pytestmark = pytest.mark.kafka

AUTH = {"authorization": f"Bearer {INGEST_TOKEN}", "content-type": "application/json"}


def _client(
    forwarder: KafkaForwarder, storage: tuple[StorageSettings, StorageClient]
) -> TestClient:
    settings, client = storage
    app = create_app(
        ApiSettings(tokens=json.loads(TOKENS)),
        StorageQueries(client, settings.database),
        routers=[ingest_router(forwarder, max_body_bytes=1 << 20)],
    )
    return TestClient(app)


@pytest.fixture
def forwarder_to(
    serve_storage: tuple[StorageSettings, StorageClient],
) -> Iterator[list[KafkaForwarder]]:
    made: list[KafkaForwarder] = []
    yield made
    for forwarder in made:
        forwarder.close()


async def test_good_events_are_forwarded_to_the_topic_and_refusals_kept(
    kafka_bootstrap: str,
    kafka_topic_factory: TopicFactory,
    serve_storage: tuple[StorageSettings, StorageClient],
    forwarder_to: list[KafkaForwarder],
) -> None:
    prefix = f"fw-{uuid.uuid4().hex[:8]}"
    topic = await kafka_topic_factory(1, name=f"{prefix}.requests")
    settings, storage = serve_storage
    forwarder = KafkaForwarder(
        IngestSettings(),
        KafkaTransportSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix),
        IngestDeadLetters(storage, settings.database),
    )
    forwarder_to.append(forwarder)
    client = _client(forwarder, serve_storage)
    body = json.dumps(envelope("fw-1", [event(0), event(1, latency_ms=-1), event(2)])).encode()

    response = await asyncio.to_thread(client.post, "/api/v1/ingest", content=body, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 2
    assert [r["index"] for r in response.json()["refused"]] == [1]
    again = await asyncio.to_thread(client.post, "/api/v1/ingest", content=body, headers=AUTH)
    assert again.json()["duplicate"] is True

    (record,) = await topic_records(kafka_bootstrap, topic)
    key, value = record
    assert key == b"pool-a"
    batch = decode_batch(value)
    assert batch.batch_id == "fw-1"
    assert [e.event_id for e in batch.events] == ["ev-0", "ev-2"]
    rows = storage.rows(
        "SELECT batch_id, event_index FROM "
        f"{quote_identifier(settings.database)}.ingest_dead_letters"
    )
    assert rows == [("fw-1", 1)]


def test_an_unreachable_kafka_answers_503_with_retry_after(
    serve_storage: tuple[StorageSettings, StorageClient],
    forwarder_to: list[KafkaForwarder],
) -> None:
    forwarder = KafkaForwarder(
        IngestSettings(retry_after_s=7),
        KafkaTransportSettings(
            bootstrap_servers=f"127.0.0.1:{free_port()}", request_timeout_ms=500
        ),
        None,
    )
    forwarder_to.append(forwarder)
    client = _client(forwarder, serve_storage)
    body = json.dumps(envelope("fw-2", [event(0)])).encode()
    response = client.post("/api/v1/ingest", content=body, headers=AUTH)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert "Kafka" not in response.text  # the cause is logged, not echoed
