"""A CLI export stopped mid-way (SIGTERM, SIGKILL) leaves no file under the target's name."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.exports.test_export_memory import REPO, _probe


def _start_export(store: Path, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "stream_app.cli", "export", "--from", "now-365d",
            "--resolution", "1d", "--format", "ndjson", "--output", str(out),
            "--data-dir", str(store), "--database", "probe",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip


def _wait_for_rows(directory: Path, timeout_s: float = 60.0) -> Path:
    """The temporary file once it holds rows (the export is under way)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        parts = list(directory.glob(".*.part"))
        if parts and parts[0].stat().st_size > 1_000_000:
            return parts[0]
        time.sleep(0.05)
    raise AssertionError("the export wrote no rows in time")


@pytest.mark.slow
def test_an_export_killed_mid_way_leaves_no_file(tmp_path: Path) -> None:
    store = tmp_path / "store"
    _probe("seed", str(store), "--days", "365", "--now-ms", str(time.time_ns() // 1_000_000))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "year.ndjson"

    terminated = _start_export(store, out)
    _wait_for_rows(out_dir)
    terminated.send_signal(signal.SIGTERM)
    assert terminated.wait(timeout=60) == 130, terminated.stderr.read() if terminated.stderr else ""
    assert list(out_dir.iterdir()) == []  # no file, no sidecar, no temporary file

    killed = _start_export(store, out)
    part = _wait_for_rows(out_dir)
    killed.kill()
    killed.wait(timeout=60)
    assert not out.exists()  # never a partial file under the target's name
    assert not Path(f"{out}.meta.json").exists()
    assert [p.name for p in out_dir.iterdir()] == [part.name]  # only the named temporary


def test_export_says_so_when_another_process_holds_the_store(tmp_path: Path) -> None:
    from stream_app.storage.store_lock import StoreLock

    lock = StoreLock.acquire(tmp_path / "clickhouse")  # as `serve` holds it
    try:
        done = subprocess.run(
            [sys.executable, "-m", "stream_app.cli", "export", "--from", "now-1h",
             "--data-dir", str(tmp_path), "--output", str(tmp_path / "x.csv")],
            cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        lock.release()
    assert done.returncode == 2
    assert "is in use by" in done.stderr
    assert not (tmp_path / "x.csv").exists()
