"""The ``api`` command as a process, scraped by a real Prometheus evaluating exported rules.

This is the path docker-compose runs: windows stored in ClickHouse -> ``proxywhirl-metrics api``
/metrics -> Prometheus -> the rules of ``alerts export-prometheus``. The pool failing 40% of its
requests must fire; the one failing 1% must not.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from stream_app.cli_alerts import alerts_export_prometheus
from tests.support.ports import LOOPBACK, free_port
from tests.support.prometheus import PrometheusFactory

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]

RULES = """\
groups:
  - name: api-e2e
    rules:
      - id: pool-errors
        name: PoolErrorRateHigh
        kind: threshold
        metric: error_rate
        op: ">"
        threshold: 0.2
        min_requests: 50
        severity: page
"""


def _wait_for(probe: Callable[[], T | None], timeout_s: float, what: str) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def api_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    data_dir = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run(
        [sys.executable, "-m", "tests.api.seed_windows", str(data_dir)],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        timeout=180,
    )
    port = free_port()
    log_path = tmp_path / "api.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "stream_app.cli", "api", "--host", LOOPBACK),
                *("--port", str(port), "--data-dir", str(data_dir)),
            ],
            cwd=REPO_ROOT,
            env={**env, "PWM_API_REFRESH_INTERVAL_S": "0.5"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process, f"{LOOPBACK}:{port}", log_path
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def _ready(base: str) -> dict[str, Any] | None:
    try:
        response = httpx.get(f"http://{base}/readyz", timeout=2.0)
    except httpx.TransportError:
        return None
    doc: dict[str, Any] = response.json()
    return doc if response.status_code == 200 and doc["scopes"] == 2 else None


def test_prometheus_fires_the_exported_rule_from_the_api_gauges(
    api_process: tuple[subprocess.Popen[bytes], str, Path],
    prometheus_factory: PrometheusFactory,
    tmp_path: Path,
) -> None:
    process, address, log_path = api_process
    ready = _wait_for(
        lambda: _ready(address) if process.poll() is None else {"exited": process.returncode},
        120,
        "the API to read the seeded windows",
    )
    assert "exited" not in ready, log_path.read_text()

    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES)
    exported = tmp_path / "prometheus-rules.yml"
    assert alerts_export_prometheus(rules_file, output=exported, err=io.StringIO()) == 0
    prometheus = prometheus_factory([address], [exported], interval_s=1.0)

    def firing() -> list[dict[str, Any]] | None:
        alerts = [a for a in prometheus.alerts() if a["state"] == "firing"]
        return alerts or None

    alerts = _wait_for(firing, 60, "the rule to fire in Prometheus")
    assert [(a["labels"]["alertname"], a["labels"]["pool"]) for a in alerts] == [
        ("PoolErrorRateHigh", "pool-hot")
    ]
    assert alerts[0]["labels"]["region"] == "eu"
    assert alerts[0]["labels"]["severity"] == "page"
    assert float(alerts[0]["value"]) == pytest.approx(0.40)
    requests = prometheus.query('proxywhirl_window_requests{pool="pool-calm"}')
    assert [float(r["value"][1]) for r in requests] == [200.0]  # scraped, and below threshold

    # Graceful stop; uvicorn then re-raises the signal so a supervisor sees what ended it.
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == -signal.SIGTERM, log_path.read_text()
    assert "Application shutdown complete" in log_path.read_text()
