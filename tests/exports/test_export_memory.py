"""A 12-month export of 50 pools x 20 regions completes with flat memory (peak RSS measured).

Each export runs in a process of its own (tests/exports/rss_probe.py), so its peak RSS
(``ru_maxrss``) is its own: the 12-month export must not need more memory than a 3-month one
beyond a small margin (the rows stream through in chunks; a single GROUP BY over the year
would hold every group of the year in the embedded engine, inside the process).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def _probe(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.exports.rss_probe", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2_000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow
def test_a_12_month_export_of_1000_scopes_keeps_memory_flat(tmp_path: Path) -> None:
    now = str(time.time_ns() // 1_000_000)
    store = str(tmp_path / "store")
    seeded = _probe("seed", store, "--days", "365", "--pools", "50", "--regions", "20",
                    "--now-ms", now)  # fmt: skip
    assert seeded["seeded_rows"] == 365 * 1_000
    quarter = _probe("export", store, "--days", "90", "--now-ms", now)
    year = _probe("export", store, "--days", "365", "--now-ms", now)
    assert quarter["rows"] == 90 * 1_000
    assert year["rows"] == 365 * 1_000  # the whole year, every scope
    # four times the rows, (nearly) the same memory
    assert year["peak_rss_mb"] <= quarter["peak_rss_mb"] * 1.15, (quarter, year)
    print(f"\n3 months: {quarter}\n12 months: {year}")
