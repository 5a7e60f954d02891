"""Print a worker's stored window totals and source offsets as JSON (run as a subprocess).

chDB allows one data path per process and the test process already has its own, so the store
a subprocess worker wrote is read by another short-lived process once the worker has exited:
``python tests/worker/worker_store_dump.py DSN DATABASE SOURCE START_MS END_MS``.
"""

from __future__ import annotations

import json
import sys

from stream_app.storage.client import get_client
from stream_app.storage.queries import StorageQueries
from stream_app.storage.settings import StorageSettings


def main(argv: list[str]) -> int:
    dsn, database, source, start_ms, end_ms = argv
    queries = StorageQueries(get_client(StorageSettings(dsn=dsn, database=database)), database)
    totals = queries.window_totals(int(start_ms), int(end_ms))
    doc = {
        "windows": [
            [t.pool, t.region, t.window_start_ms, t.requests, t.successes, t.bytes_in]
            for t in totals
        ],
        "last_offsets": queries.last_offsets(source),
    }
    json.dump(doc, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
