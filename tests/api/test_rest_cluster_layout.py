"""The read views run over the cluster layout too (Distributed tables over local ones): summary,
series, top offenders, alerts and saved baselines on the one-shard chDB stand-in that
tests/storage/test_cluster_layout_runs.py builds (subqueries need GLOBAL IN there)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from stream_app.storage.migrate import Migrator
from stream_app.storage.settings import StorageSettings
from tests.storage.test_cluster_layout_runs import CONFIG, single_host

HERE = Path(__file__).resolve().parent


def test_the_read_views_run_over_distributed_tables(tmp_path: Path) -> None:
    migrator = Migrator(
        None,  # type: ignore[arg-type]  # rendering only
        StorageSettings(dsn="http://ch-1:8123", database="standin", cluster="pwm"),
    )
    up = migrator.bookkeeping_statements() + [
        s for m in migrator.migrations for s in migrator.render(m, "up")
    ]
    config = tmp_path / "cluster.xml"
    config.write_text(CONFIG)
    job = {
        "path": str(tmp_path / "chdb"),
        "config": str(config),
        "up": [single_host(s) for s in up],
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    done = subprocess.run(
        [sys.executable, str(HERE / "cluster_views_standin.py")],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["engine"] == "Distributed"
    assert out["series_total"] == out["events"]
    assert out["scopes"] == {
        "mobile/eu-west": "ok",
        "mobile/us-east": "no_data",
        "residential/eu-west": "ok",
        "residential/us-east": "ok",
    }
    assert out["worst_is_bad"] is True
    assert (out["active_alerts"], out["history"], out["baselines"]) == (0, 0, 0)
