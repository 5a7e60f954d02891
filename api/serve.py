"""``proxywhirl-metrics api``: serve :func:`api.app.create_app` with uvicorn until interrupted.

With the embedded engine (``chdb://``) the schema is migrated at start, as the demo does; against
a ClickHouse server the ``migrate`` job owns the schema and the API only reads. The embedded
engine admits one process per data directory: run the API beside the workers of a server
deployment, or on a data directory no other process has open.
"""

from __future__ import annotations

import logging

import uvicorn

from api.app import create_app
from api.settings import ApiSettings
from stream_app.storage.client import get_client
from stream_app.storage.migrate import Migrator
from stream_app.storage.queries import StorageQueries
from stream_app.storage.settings import StorageSettings

__all__ = ["build_server", "serve"]

logger = logging.getLogger(__name__)


def build_server(settings: ApiSettings, storage: StorageSettings) -> uvicorn.Server:
    """An unstarted uvicorn server around the API app (storage opened, schema checked)."""
    client = get_client(storage)
    if storage.embedded:
        Migrator(client, storage).migrate()
    app = create_app(settings, StorageQueries(client, storage.database))
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # our logging setup (plain or JSON lines) applies
        access_log=False,
        lifespan="on",
    )
    logger.info(
        "API on http://%s:%d (storage %s, database %s)",
        settings.host,
        settings.port,
        storage.redacted_dsn(),
        storage.database,
    )
    return uvicorn.Server(config)


def serve(settings: ApiSettings, storage: StorageSettings) -> None:
    """Run until SIGINT/SIGTERM. uvicorn shuts down gracefully (the lifespan stops the feed),
    then re-raises the signal, so a supervisor sees the process ended by it."""
    build_server(settings, storage).run()
