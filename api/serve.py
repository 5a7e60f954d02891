"""``proxywhirl-metrics api``: serve :func:`api.app.create_app` with uvicorn until interrupted.

With the embedded engine (``chdb://``) the schema is migrated at start, as the demo does, and
the process holds the store (a second process is told to query this one); ``serve`` is the
embedded default with ingest and pipeline. Against a ClickHouse server the ``migrate`` job owns
the schema and the API is stateless (run any number of replicas); with
``PWM_INGEST_FORWARD_BOOTSTRAP_SERVERS`` set it also takes ``POST /api/v1/ingest`` and forwards
the records to the Kafka topic (:mod:`stream_app.serve.forwarder`), for fleet hosts that cannot
reach Kafka.
"""

from __future__ import annotations

import logging
from pathlib import Path

import uvicorn

from api.app import create_app
from api.routes.ingest import ingest_router
from api.settings import ApiSettings
from producer.kafka_settings import KafkaTransportSettings
from stream_app.serve.dead_letters import IngestDeadLetters
from stream_app.serve.forwarder import KafkaForwarder
from stream_app.serve.process import serving_url
from stream_app.serve.settings import IngestSettings
from stream_app.storage.client import get_client, store_lock
from stream_app.storage.migrate import Migrator
from stream_app.storage.queries import StorageQueries
from stream_app.storage.settings import StorageSettings

__all__ = ["build_server", "serve"]

logger = logging.getLogger(__name__)


def build_server(
    settings: ApiSettings,
    storage: StorageSettings,
    ingest: IngestSettings | None = None,
    *,
    rules_path: Path | None = None,
) -> tuple[uvicorn.Server, KafkaForwarder | None]:
    """An unstarted uvicorn server around the API app (storage opened, schema checked), and
    the Kafka forwarder behind ``POST /api/v1/ingest`` when ``ingest`` names a Kafka cluster
    and the storage is a ClickHouse server (the caller closes it after the server stopped)."""
    client = get_client(storage)  # the embedded store: raises StoreInUse if another holds it
    if storage.embedded:
        Migrator(client, storage).migrate()
    forwarder: KafkaForwarder | None = None
    routers = []
    if ingest is not None and ingest.forward_bootstrap_servers and not storage.embedded:
        kafka = KafkaTransportSettings(
            bootstrap_servers=ingest.forward_bootstrap_servers,
            topic_prefix=ingest.forward_topic_prefix,
            client_id="proxywhirl-metrics-api-ingest",
        )
        forwarder = KafkaForwarder(ingest, kafka, IngestDeadLetters(client, storage.database))
        routers.append(ingest_router(forwarder, max_body_bytes=ingest.max_body_bytes))
    app = create_app(
        settings, StorageQueries(client, storage.database), routers=routers, rules_path=rules_path
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # our logging setup (plain or JSON lines) applies
        access_log=False,
        lifespan="on",
    )
    url = serving_url(settings.host, settings.port)
    lock = store_lock()
    if lock is not None and settings.port:
        lock.announce(url=url)
    logger.info(
        "API on %s (storage %s, database %s%s)",
        url,
        storage.redacted_dsn(),
        storage.database,
        ", ingest forwarded to Kafka" if forwarder is not None else "",
    )
    return uvicorn.Server(config), forwarder


def serve(
    settings: ApiSettings,
    storage: StorageSettings,
    ingest: IngestSettings | None = None,
    *,
    rules_path: Path | None = None,
) -> None:
    """Run until SIGINT/SIGTERM. uvicorn shuts down gracefully (the lifespan stops the feed),
    then re-raises the signal, so a supervisor sees the process ended by it."""
    server, forwarder = build_server(settings, storage, ingest, rules_path=rules_path)
    try:
        server.run()
    finally:
        if forwarder is not None:
            forwarder.close()
