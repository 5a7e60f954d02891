"""Runs the cluster schema for real on a one-host stand-in (a subprocess of
test_cluster_layout_runs.py; chDB hosts one engine per process).

chDB is started with a configuration that defines the cluster ``pwm`` as one local shard, so
``Distributed`` tables work as on a cluster: inserts split by the sharding key and reach the
local tables, whose materialized views fill the cascade; reads go through the Distributed
tables. What a one-host engine cannot run is replaced by its single-server equivalent, and only
that: ``ON CLUSTER`` (no Keeper for the DDL queue) and the ``Replicated`` engines with their
deduplication window (the same window, kept locally instead of in Keeper). Then the real sink
writes flushes and the real queries read them, unaware of the layout.

Input (stdin, JSON): data path, config file, database, up statements, down statements.
Output (stdout, JSON): what the test asserts on.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import chdb
from storage_builders import FlushBuilder, random_events

from stream_app.storage.client import get_client
from stream_app.storage.queries import StorageQueries
from stream_app.storage.settings import StorageSettings
from stream_app.storage.sink import ClickHouseSink


def main() -> None:
    job = json.loads(sys.stdin.read())
    path, database = job["path"], job["database"]
    connection = chdb.connect(f"file:{path}?config-file={job['config']}")  # type: ignore[no-untyped-call]
    settings = StorageSettings(dsn=f"chdb://{path}", database=database)
    client = get_client(settings)  # the same engine, with the cluster configuration
    out: dict[str, object] = {
        "clusters": client.rows("SELECT cluster, shard_num, is_local FROM system.clusters")
    }
    for statement in job["up"]:
        client.command(statement)
    out["engines"] = dict(
        client.rows(
            "SELECT name, engine FROM system.tables WHERE database = {db:String}",
            {"db": database},
        )
    )

    sink = ClickHouseSink(client, settings)
    queries = StorageQueries(client, database)
    hour_ms = 3_600_000
    start_ms = (int(time.time()) // 3600 - 2) * hour_ms
    events = random_events(
        random.Random(7),
        400,
        start_ms=start_ms,
        span_ms=90_000,
        pools=["eu-res", "us-dc"],
        regions=["eu", "us"],
    )
    builder = FlushBuilder(source="kafka-standin")
    first = builder.flush(events[:300])
    second = builder.flush(events[300:])
    for flush in (first, first, second, first):  # re-deliveries change nothing
        sink.write(flush)
    totals = {}
    for resolution in ("10s", "1m", "1h", "1d"):
        rows = queries.window_totals(start_ms - 86_400_000, start_ms + hour_ms, resolution)
        totals[resolution] = sum(r.requests for r in rows)
    out["totals"] = totals
    per_pool: dict[str, int] = {}
    for row in queries.range_totals(start_ms, start_ms + hour_ms):
        per_pool[row.pool] = per_pool.get(row.pool, 0) + row.requests
    out["per_pool"] = per_pool
    proxies = queries.proxy_totals(start_ms, start_ms + hour_ms)
    out["proxy_requests"] = sum(r.requests for r in proxies)
    out["offsets"] = queries.last_offsets("kafka-standin")
    p95 = queries.percentiles(start_ms, start_ms + hour_ms, [0.95], "1h", by_window=False)
    out["p95_rows"] = len(p95)
    out["local_rows"] = client.rows(f"SELECT sum(requests) FROM `{database}`.agg_10s_local")[0][0]

    for statement in job["down"]:
        client.command(statement)
    out["left"] = sorted(
        name
        for (name,) in client.rows(
            "SELECT name FROM system.tables WHERE database = {db:String}", {"db": database}
        )
    )
    connection.close()
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
