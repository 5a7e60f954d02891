"""The web dashboard in headless Chromium over synthetic history: time from navigation to the
first rendered fleet grid, bytes the page transfers (as sent: gzipped where the API compresses),
and the API's latency (p50/p95, per route) while the page auto-refreshes.

History comes from benchmarks/api_queries.py's generator (``--days`` of hourly rows and the last
``--recent-minutes`` of 10 s windows for ``--pools`` x ``--regions``). The API with the dashboard
runs in this process under uvicorn on a loopback port; the browser is Debian's Chromium
(``--chromium``, never a downloaded one) driven by Playwright. Latencies are the browser's own
request timings (request start to response end).

Run: .venv/bin/python benchmarks/dashboard_page.py [--days 90] [--pools 50] [--regions 20]
     [--refresh-s 10] [--duration-s 120] [--view "?range=24h"]
     .venv/bin/python benchmarks/dashboard_page.py --tiny   # seconds: checks the script runs
Writes benchmarks/results/dashboard_page.json (not with --tiny). Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from playwright.sync_api import Request, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_queries import fill, percentile_ms, start_server

from stream_app.storage.client import get_client
from stream_app.storage.migrate import Migrator
from stream_app.storage.settings import StorageSettings

RESULTS = Path(__file__).resolve().parent / "results" / "dashboard_page.json"


def _route(url: str) -> str:
    path = urlparse(url).path
    return path if path.startswith("/api/") else "page"


def measure(base: str, args: argparse.Namespace) -> dict[str, Any]:
    transferred: dict[str, int] = defaultdict(int)
    latencies_s: dict[str, list[float]] = defaultdict(list)
    first_load = True

    def finished(request: Request) -> None:
        sizes = request.sizes()
        kind = _route(request.url)
        if first_load:
            key = "static" if kind == "page" else "api_first_refresh"
            transferred[key] += sizes["responseBodySize"] + sizes["responseHeadersSize"]
        if kind != "page":
            timing = request.timing
            if timing["responseEnd"] > 0:
                latencies_s[kind].append(timing["responseEnd"] / 1000)

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=args.chromium, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("requestfinished", finished)
        separator = "&" if "?" in args.view else "?"
        url = f"{base}/{args.view}{separator}refresh={args.refresh_s}"
        started = time.perf_counter()
        page.goto(url, wait_until="commit")
        page.wait_for_selector("[data-testid=fleet-grid]", timeout=120_000)
        to_grid_s = time.perf_counter() - started
        in_page_ms = float(page.evaluate("performance.now()"))
        page.wait_for_load_state("networkidle")
        first_load = False
        time.sleep(args.duration_s)
        refreshes = int(page.evaluate("Number(document.body.dataset.loaded || 0)"))
        browser.close()
    every = [v for values in latencies_s.values() for v in values]
    return {
        "navigation_to_grid_ms": to_grid_s * 1000,
        "navigation_to_grid_in_page_ms": in_page_ms,
        "transferred_bytes": dict(transferred),
        "refreshes_rendered": refreshes,
        "api": {
            "requests": len(every),
            "p50_ms": percentile_ms(every, 0.5),
            "p95_ms": percentile_ms(every, 0.95),
            "max_ms": percentile_ms(every, 1.0),
            "by_route": {
                route: {
                    "requests": len(values),
                    "p50_ms": percentile_ms(values, 0.5),
                    "p95_ms": percentile_ms(values, 0.95),
                }
                for route, values in sorted(latencies_s.items())
            },
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--pools", type=int, default=50)
    parser.add_argument("--regions", type=int, default=20)
    parser.add_argument("--recent-minutes", type=int, default=30)
    parser.add_argument("--refresh-s", type=int, default=10, choices=(5, 10, 30, 60))
    parser.add_argument("--duration-s", type=float, default=120.0)
    parser.add_argument("--view", default="?range=1h", help="the dashboard URL's query")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--tiny", action="store_true", help="a few seconds: check that it runs")
    args = parser.parse_args()
    if args.tiny:
        args.days, args.pools, args.regions, args.recent_minutes = 2, 3, 2, 5
        args.refresh_s, args.duration_s = 5, 6.0

    with tempfile.TemporaryDirectory(prefix="pwm-bench-") as tmp:
        settings = StorageSettings(
            dsn=f"chdb://{tmp}/clickhouse", database=f"bench_{uuid.uuid4().hex[:8]}"
        )
        client = get_client(settings)
        Migrator(client, settings).migrate()
        filled = fill(client, settings.database, args)
        server, base = start_server(settings, client)
        try:
            measured = measure(base, args)
        finally:
            server.should_exit = True
        client.command(f"DROP DATABASE {settings.database} SYNC")

    result = {
        "benchmark": "dashboard_page",
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "parameters": vars(args),
        **filled,
        **measured,
        "load_average_1m": os.getloadavg()[0],
        "note": "browser timings over loopback (keep-alive), including waiting for the CPU on a "
        "shared machine; transferred bytes are headers + bodies as sent",
    }
    sizes = measured["transferred_bytes"]
    api = measured["api"]
    print(
        f"history: {args.days} d x {args.pools * args.regions} scopes, "
        f"fill {filled['fill_s']:.1f} s; view {args.view}, "
        f"refresh every {args.refresh_s} s for {args.duration_s:.0f} s"
    )
    print(
        f"navigation -> grid {measured['navigation_to_grid_ms']:.0f} ms "
        f"(in page {measured['navigation_to_grid_in_page_ms']:.0f} ms); "
        f"page {sizes.get('static', 0) / 1024:.1f} KiB + first API round "
        f"{sizes.get('api_first_refresh', 0) / 1024:.1f} KiB transferred"
    )
    print(
        f"API while refreshing: {api['requests']} requests, {measured['refreshes_rendered']} "
        f"refreshes; p50 {api['p50_ms']:.1f} ms, p95 {api['p95_ms']:.1f} ms, "
        f"max {api['max_ms']:.1f} ms"
    )
    for route, stats in api["by_route"].items():
        print(f"  {route:28s} {stats['requests']:5d}  p95 {stats['p95_ms']:7.1f} ms")
    print(f"load average {result['load_average_1m']:.1f} on {os.cpu_count()} CPUs")
    if not args.tiny:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        print(f"results: {RESULTS}")


if __name__ == "__main__":
    main()
