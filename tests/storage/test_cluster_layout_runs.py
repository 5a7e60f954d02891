"""The cluster layout runs for real: Distributed tables over local ones, the cascade on the local
tables, deduplicated re-deliveries through the Distributed insert, the real sink and queries.

No cluster can run here, so a subprocess runs chDB with the cluster ``pwm`` configured as one
local shard (tests/storage/cluster_standin.py). The statements are exactly what cluster mode
renders, minus what needs Keeper: ``ON CLUSTER`` is dropped and each ``Replicated`` engine (and
its deduplication window) becomes its single-server equivalent. Every statement kept as it is
was also parsed by ClickHouse in test_cluster_rendering.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from stream_app.storage.migrate import Migrator
from stream_app.storage.settings import StorageSettings

HERE = Path(__file__).resolve().parent
DATABASE = "standin"
CONFIG = """<clickhouse>
    <tcp_port>9000</tcp_port>
    <remote_servers>
        <pwm>
            <shard>
                <internal_replication>true</internal_replication>
                <replica><host>localhost</host><port>9000</port></replica>
            </shard>
        </pwm>
    </remote_servers>
</clickhouse>
"""


def single_host(statement: str) -> str:
    """What a one-host engine can run: no ON CLUSTER, no Keeper-backed engine or window."""
    statement = statement.replace(" ON CLUSTER `pwm`", "")
    statement = re.sub(r"Replicated(\w*MergeTree)\('[^']*', '[^']*'\)", r"\1", statement)
    return re.sub(
        r"replicated_deduplication_window = (\d+), replicated_deduplication_window_seconds = \d+",
        r"non_replicated_deduplication_window = \1",
        statement,
    )


def test_the_cluster_layout_stores_and_reads_like_one_server(tmp_path: Path) -> None:
    migrator = Migrator(
        None,  # type: ignore[arg-type]  # rendering only
        StorageSettings(dsn="http://ch-1:8123", database=DATABASE, cluster="pwm"),
    )
    up = migrator.bookkeeping_statements() + [
        s for m in migrator.migrations for s in migrator.render(m, "up")
    ]
    down = [s for m in reversed(migrator.migrations) for s in migrator.render(m, "down")]
    runnable_up = [single_host(s) for s in up]
    assert not any("Replicated" in s or "ON CLUSTER" in s for s in runnable_up)
    assert sum("ENGINE = Distributed('pwm'" in s for s in runnable_up) >= 10
    config = tmp_path / "cluster.xml"
    config.write_text(CONFIG)
    job = {
        "path": str(tmp_path / "chdb"),
        "config": str(config),
        "database": DATABASE,
        "up": runnable_up,
        "down": [single_host(s) for s in down],
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    done = subprocess.run(
        [sys.executable, str(HERE / "cluster_standin.py")],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])

    assert out["clusters"] == [["pwm", 1, 1]]
    engines = out["engines"]
    assert engines["flush_ingest"] == "Distributed"
    assert engines["flush_ingest_local"] == "Null"
    for table in ("agg_10s", "agg_1m", "agg_1h", "agg_1d", "proxy_1m", "source_offsets"):
        assert engines[table] == "Distributed", table
        assert engines[f"{table}_local"] == "AggregatingMergeTree", table
    assert engines["agg_10s_mv"] == "MaterializedView"
    # Three deliveries of the first flush and one of the second: 400 events, at every level.
    assert out["totals"] == {"10s": 400, "1m": 400, "1h": 400, "1d": 400}
    assert sum(out["per_pool"].values()) == 400
    assert set(out["per_pool"]) == {"eu-res", "us-dc"}
    assert out["proxy_requests"] == 400
    assert out["offsets"] == {"0": 399}  # the last offset of the second flush
    assert out["p95_rows"] >= 1
    assert out["local_rows"] == 400
    assert out["left"] == ["schema_migrations"]
