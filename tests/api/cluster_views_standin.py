"""Runs the read views over the cluster layout on a one-host stand-in (a subprocess of
test_rest_cluster_layout.py; chDB hosts one engine per process, see
tests/storage/cluster_standin.py for how the stand-in is built).

Input (stdin, JSON): data path, config file, up statements. Output (stdout, JSON): what the test
asserts on.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import chdb

from stream_app.storage.client import get_client
from stream_app.storage.queries import StorageQueries
from stream_app.storage.query_alerts import AlertFilter
from stream_app.storage.query_metrics import SeriesMetric
from stream_app.storage.query_tiers import Retention
from stream_app.storage.query_views import offenders_view, series_view, summary_view
from stream_app.storage.settings import StorageSettings
from stream_app.storage.sink import ClickHouseSink
from tests.api.rest_support import seeded_history
from tests.storage.storage_builders import FlushBuilder

DATABASE = "standin"


def main() -> None:
    job = json.loads(sys.stdin.read())
    connection = chdb.connect(f"file:{job['path']}?config-file={job['config']}")  # type: ignore[no-untyped-call]
    settings = StorageSettings(dsn=f"chdb://{job['path']}", database=DATABASE)
    client = get_client(settings)
    for statement in job["up"]:
        client.command(statement)
    now_ms = time.time_ns() // 1_000_000 // 10_000 * 10_000
    history = seeded_history(now_ms)
    sink, builder = ClickHouseSink(client, settings), FlushBuilder(source="standin")
    for i in range(0, len(history.events), 2_000):
        sink.write(builder.flush(history.events[i : i + 2_000]))
    queries = StorageQueries(client, DATABASE)
    retention = Retention.default()
    summary = summary_view(queries, now_ms=now_ms, window_s=10, settle_ms=7_000, staleness_s=120.0)
    series = series_view(
        queries,
        SeriesMetric.REQUESTS,
        start_ms=now_ms - 3_600_000,
        end_ms=now_ms,
        now_ms=now_ms,
        retention=retention,
        staleness_s=120.0,
    )
    offenders = offenders_view(
        queries,
        pool="residential",
        region="eu-west",
        order_by="error_rate",
        start_ms=now_ms - 3_600_000,
        end_ms=now_ms,
        now_ms=now_ms,
        retention=retention,
    )
    out = {
        "engine": client.rows(
            "SELECT engine FROM system.tables WHERE database = {db:String} AND name = 'agg_10s'",
            {"db": DATABASE},
        )[0][0],
        "events": len(history.events),
        "scopes": {f"{s.pool}/{s.region}": s.status for s in summary.scopes},
        "series_total": sum(v for _, v in series.points if v is not None),
        "worst_is_bad": offenders.proxies[0].proxy_id == history.bad_proxy,
        "active_alerts": len(queries.active_alerts(AlertFilter())),
        "history": len(queries.alert_history(AlertFilter(), start_ms=0, end_ms=now_ms)),
        "baselines": len(queries.saved_baselines()),
    }
    connection.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
