"""Export rate per format and peak memory of a 12-month export of 50 pools x 20 regions.

Seeds a temporary chDB store (``agg_1h``, whose view fills ``agg_1d``: days x 24 x pools x
regions rows made by the engine, INSERT ... SELECT FROM numbers()), then exports the whole span
at ``--resolution`` once per format, each in a process of its own (tests/exports/rss_probe.py),
and prints rows/s and the export process's peak RSS per format.

Run: .venv/bin/python benchmarks/export_rate.py [--days 365] [--pools 50] [--regions 20]
     [--resolution 1h|1d] [--formats csv,ndjson,parquet]
(a quick check: --days 3 --pools 2 --regions 2). Writes benchmarks/results/export_rate.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "export_rate.json"


def _probe(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.exports.rss_probe", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr[-4_000:])
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--pools", type=int, default=50)
    parser.add_argument("--regions", type=int, default=20)
    parser.add_argument("--resolution", default="1h", choices=["1h", "1d"])
    parser.add_argument("--formats", default="csv,ndjson,parquet")
    parser.add_argument("--no-save", action="store_true", help="print only")
    args = parser.parse_args()
    now = str(time.time_ns() // 1_000_000)
    scope = ["--pools", str(args.pools), "--regions", str(args.regions)]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="pwm-export-bench-") as tmp:
        store = str(Path(tmp) / "store")
        began = time.perf_counter()
        seeded = _probe("seed", store, "--days", str(args.days), *scope,
                        "--resolution", args.resolution, "--now-ms", now)  # fmt: skip
        print(f"seeded {seeded['seeded_rows']} rows in {time.perf_counter() - began:.1f} s")
        for fmt in args.formats.split(","):
            result = _probe("export", store, "--days", str(args.days), "--resolution",
                            args.resolution, "--format", fmt, "--now-ms", now)  # fmt: skip
            results[fmt] = result
            print(
                f"{fmt:8} {result['rows']:>10} rows  {result['rows_per_s']:>10.0f} rows/s  "
                f"peak RSS {result['peak_rss_mb']:.0f} MB  {result['bytes'] / 1e6:.1f} MB"
            )
    if not args.no_save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(
            json.dumps(
                {
                    "days": args.days,
                    "pools": args.pools,
                    "regions": args.regions,
                    "resolution": args.resolution,
                    "machine": platform.platform(),
                    "results": results,
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
