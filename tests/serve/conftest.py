"""Fixtures of the serve tests: the ingest route in process, over real chDB, a real inbox and
the pipeline's real hand-off queue (left undrained unless a test drains it).

chDB hosts one data path per process: the path another area's tests opened is reused.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serve_kit import (
    MAX_BODY_BYTES,
    MAX_DECODED_BYTES,
    QUEUE_RECORDS,
    RETRY_AFTER_S,
    TOKENS,
    IngestRig,
)

from api.app import create_app
from api.routes.ingest import ingest_router
from api.settings import ApiSettings
from stream_app.embedded.handoff import RecordHandoff
from stream_app.serve.dead_letters import IngestDeadLetters
from stream_app.serve.inbox import IngestInbox
from stream_app.serve.ingestor import EmbeddedIngestor
from stream_app.serve.settings import IngestSettings
from stream_app.storage.client import StorageClient, get_client, open_chdb_path
from stream_app.storage.engines import quote_identifier
from stream_app.storage.migrate import Migrator
from stream_app.storage.queries import StorageQueries
from stream_app.storage.settings import StorageSettings


@pytest.fixture(scope="session")
def serve_chdb_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = open_chdb_path() or str(tmp_path_factory.mktemp("chdb"))
    return f"chdb://{path}"


@pytest.fixture
def serve_storage(serve_chdb_dsn: str) -> Iterator[tuple[StorageSettings, StorageClient]]:
    """A migrated database of its own (dropped afterwards) and the client on it."""
    settings = StorageSettings(dsn=serve_chdb_dsn, database=f"sv_{uuid.uuid4().hex[:12]}")
    client = get_client(settings)
    Migrator(client, settings).migrate()
    yield settings, client
    client.command(f"DROP DATABASE IF EXISTS {quote_identifier(settings.database)} SYNC")


@pytest.fixture
def rig(
    tmp_path: Path, serve_storage: tuple[StorageSettings, StorageClient]
) -> Iterator[IngestRig]:
    settings, storage = serve_storage
    loop = asyncio.new_event_loop()
    handoff = RecordHandoff(loop, max_records=QUEUE_RECORDS, max_events=1_000)
    inbox = IngestInbox(tmp_path / "inbox.sqlite", dedup_ttl_s=3600)
    ingestor = EmbeddedIngestor(
        IngestSettings(
            max_body_bytes=MAX_BODY_BYTES,
            max_decoded_bytes=MAX_DECODED_BYTES,
            retry_after_s=RETRY_AFTER_S,
        ),
        inbox,
        handoff,
        IngestDeadLetters(storage, settings.database),
    )
    app = create_app(
        ApiSettings(tokens=json.loads(TOKENS)),
        StorageQueries(storage, settings.database),
        routers=[ingest_router(ingestor, max_body_bytes=MAX_BODY_BYTES)],
    )
    try:
        yield IngestRig(TestClient(app), ingestor, handoff, inbox, storage, settings)
    finally:
        inbox.close()
        loop.close()
