"""Writes recent windows into an embedded ClickHouse data directory, then exits.

Run as ``python -m tests.api.seed_windows DATA_DIR`` from the repository root: chDB admits one
data path per process, so the API process under test cannot share the test process's engine.
Pool ``pool-hot`` (region ``eu``) fails 40% of its requests in each of the last five settled
10 s windows; ``pool-calm`` fails 1%.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from schemas.events import Outcome
from schemas.wire import WireEvent
from stream_app.storage.client import get_client
from stream_app.storage.migrate import Migrator
from stream_app.storage.settings import StorageSettings
from stream_app.storage.sink import ClickHouseSink
from tests.storage.storage_builders import FlushBuilder

WINDOW_MS = 10_000
REQUESTS_PER_WINDOW = 200
ERROR_SHARE = {"pool-hot": 0.40, "pool-calm": 0.01}


def events(now_ms: int) -> list[WireEvent]:
    newest_end_ms = (now_ms - 7_000) // WINDOW_MS * WINDOW_MS  # settled: end + grace + 2 s
    out = []
    for w in range(5):
        start_ms = newest_end_ms - (w + 1) * WINDOW_MS
        for pool, share in ERROR_SHARE.items():
            errors = round(REQUESTS_PER_WINDOW * share)
            for i in range(REQUESTS_PER_WINDOW):
                failed = i < errors
                out.append(
                    WireEvent(
                        event_id=f"{pool}-{w}-{i}",
                        ts_ms=start_ms + i * (WINDOW_MS // REQUESTS_PER_WINDOW),
                        pool=pool,
                        region="eu",
                        outcome=Outcome.TIMEOUT if failed else Outcome.SUCCESS,
                        latency_ms=900.0 if failed else 80.0,
                        source_host="seed",
                        proxy_id=f"{i % 7:016x}",
                        status_code=None if failed else 200,
                    )
                )
    return out


def main(data_dir: Path) -> None:
    settings = StorageSettings(data_dir=data_dir)
    client = get_client(settings)
    Migrator(client, settings).migrate()
    ClickHouseSink(client, settings).write(
        FlushBuilder(source="seed").flush(events(time.time_ns() // 1_000_000))
    )
    client.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
