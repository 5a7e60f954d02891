"""The README's first command: the demo runs, stops cleanly and leaves history in the store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stream_app.simulator import FleetSimulator, load_scenario

pytestmark = pytest.mark.slow

_FAST_WINDOWS = {
    "PWM_PIPELINE__WINDOW_S": "2",
    "PWM_PIPELINE__GRACE_MS": "500",
    "PWM_PIPELINE__PROXY_WINDOW_S": "10",
    "PWM_PIPELINE__FLUSH_INTERVAL_MS": "250",
}


def _cli(*args: str, env: dict[str, str] | None = None, timeout_s: float = 120) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "stream_app.cli", "--log-level", "WARNING", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _report(data_dir: Path) -> dict[tuple[str, str], dict[str, object]]:
    out = _cli("report", "--data-dir", str(data_dir), "--json", "--last", "600")
    return {(row["pool"], row["region"]): row for row in json.loads(out)}


def test_demo_runs_for_a_few_seconds_and_stores_every_pool_and_region(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    out = _cli(
        "demo",
        "--duration",
        "6",
        "--data-dir",
        str(data_dir),
        "--seed",
        "3",
        "--port",
        "0",
        env=_FAST_WINDOWS,
    )
    assert "demo: stopped after" in out
    assert "window " in out, "no window summary was printed"

    expected_scopes = set(FleetSimulator(load_scenario(None), seed=3).scopes)
    stored = _report(data_dir)
    assert set(stored) == expected_scopes
    for scope, row in stored.items():
        assert row["requests"] > 0, scope
        assert row["windows"] >= 2, scope
        assert 0 < row["success_rate"] <= 1, scope
        assert row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"], scope
    # Everything emitted was stored (the final flush runs on shutdown), except late events,
    # which are counted and kept as dead letters with the reason.
    emitted = int(out.split("demo: stopped after ")[1].split(" events")[0])
    late = int(out.split(" late, ")[0].rsplit(" ", 1)[1])
    assert sum(int(r["requests"]) for r in stored.values()) == emitted - late  # type: ignore[call-overload]
    dead = (data_dir / "dead-letters.jsonl").read_text().splitlines() if late else []
    assert len(dead) == late
    assert all(json.loads(line)["reason"].startswith("late: ") for line in dead)

    # A restart keeps history: a second run adds to what the first stored.
    _cli(
        "demo",
        "--duration",
        "3",
        "--data-dir",
        str(data_dir),
        "--seed",
        "4",
        "--port",
        "0",
        env=_FAST_WINDOWS,
    )
    again = _report(data_dir)
    assert sum(int(r["requests"]) for r in again.values()) > emitted  # type: ignore[call-overload]


def test_demo_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stream_app.cli",
            "--log-level",
            "WARNING",
            "demo",
            "--data-dir",
            str(tmp_path / "data"),
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **_FAST_WINDOWS},
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 90
    seen_window = False
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("window "):
            seen_window = True
            break
    assert seen_window, "the demo printed no window before the deadline"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "demo: stopped after" in out
