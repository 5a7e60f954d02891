"""Insert throughput of the ClickHouse sink: one idempotent insert per flush, real chDB.

Builds flushes the way the core does (Accumulator.add over generated request events, pool x
region windows of 10 s and per-proxy windows of 60 s, one source range per flush), then times
``ClickHouseSink.write`` for each: converting the flush to columns and the one insert that fans
out through the materialized views (agg_10s -> 1m -> 1h -> 1d, proxy_1m, source_offsets).
Also times re-delivering flushes already written (the deduplicated path).

Run: .venv/bin/python benchmarks/storage_insert.py [--flushes N] [--events-per-flush N] ...
Writes benchmarks/results/storage_insert.json. Uses a temporary chDB directory unless --dsn.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from schemas.events import Outcome
from schemas.wire import WireEvent
from stream_app.core.accumulator import Accumulator
from stream_app.core.contributions import Contribution, Flush, ScopeKey, SourceRange
from stream_app.storage.client import get_client
from stream_app.storage.migrate import Migrator
from stream_app.storage.rows import flush_columns
from stream_app.storage.settings import StorageSettings
from stream_app.storage.sink import ClickHouseSink

RESULTS = Path(__file__).resolve().parent / "results" / "storage_insert.json"
OUTCOMES = [Outcome.SUCCESS] * 17 + [Outcome.TIMEOUT, Outcome.HTTP_ERROR, Outcome.PROXY_ERROR]


def build_flushes(args: argparse.Namespace, start_ms: int) -> list[Flush]:
    rng = random.Random(args.seed)
    pools = [f"pool-{i}" for i in range(args.pools)]
    regions = [f"region-{i}" for i in range(args.regions)]
    scopes = [(p, r) for p in pools for r in regions]
    proxies = {
        scope: [
            hashlib.sha256(f"{scope[0]}/{scope[1]}/{i}".encode()).hexdigest()[:16]
            for i in range(args.proxies_per_scope)
        ]
        for scope in scopes
    }
    flushes = []
    offset = 0
    for n in range(args.flushes):
        now_ms = start_ms + n * args.flush_interval_ms
        scope_accs: dict[tuple[str, str, int], Accumulator] = {}
        proxy_accs: dict[tuple[str, str, str, int], Accumulator] = {}
        for i in range(args.events_per_flush):
            pool, region = scopes[i % len(scopes)]
            ts_ms = now_ms - rng.randrange(args.flush_interval_ms)
            proxy = rng.choice(proxies[(pool, region)])
            ev = WireEvent(
                event_id=f"{n}-{i}",
                ts_ms=ts_ms,
                pool=pool,
                region=region,
                outcome=rng.choice(OUTCOMES),
                latency_ms=rng.lognormvariate(4.5, 0.8),
                source_host="bench",
                proxy_id=proxy,
                status_code=200,
                bytes_in=rng.randrange(50_000),
                bytes_out=rng.randrange(2_000),
            )
            w10 = ts_ms - ts_ms % 10_000
            w60 = ts_ms - ts_ms % 60_000
            scope_accs.setdefault((pool, region, w10), Accumulator()).add(ev)
            proxy_accs.setdefault((pool, region, proxy, w60), Accumulator()).add(ev)
        flushes.append(
            Flush(
                scopes=[
                    Contribution(ScopeKey(p, r), w, 10, acc)
                    for (p, r, w), acc in scope_accs.items()
                ],
                proxies=[
                    Contribution(ScopeKey(p, r, x), w, 60, acc)
                    for (p, r, x, w), acc in proxy_accs.items()
                ],
                ranges=[SourceRange("bench", 0, offset, offset + args.records_per_flush - 1)],
            )
        )
        offset += args.records_per_flush
    return flushes


def summary(samples_s: list[float]) -> dict[str, float]:
    ordered = sorted(samples_s)
    return {
        "mean_ms": statistics.fmean(ordered) * 1000,
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "max_ms": ordered[-1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flushes", type=int, default=21, help="the first one warms up")
    parser.add_argument("--events-per-flush", type=int, default=100_000)
    parser.add_argument("--pools", type=int, default=50)
    parser.add_argument("--regions", type=int, default=20)
    parser.add_argument("--proxies-per-scope", type=int, default=10)
    parser.add_argument("--records-per-flush", type=int, default=200, help="envelopes per flush")
    parser.add_argument("--flush-interval-ms", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dsn", default="", help="default: a temporary chDB directory")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pwm-bench-") as tmp:
        dsn = args.dsn or f"chdb://{tmp}/clickhouse"
        settings = StorageSettings(dsn=dsn, database=f"bench_{uuid.uuid4().hex[:8]}")
        client = get_client(settings)
        Migrator(client, settings).migrate()
        sink = ClickHouseSink(client, settings)

        start_ms = (int(time.time()) // 3600 - 1) * 3_600_000
        t0 = time.perf_counter()
        flushes = build_flushes(args, start_ms)
        build_s = time.perf_counter() - t0

        warmup_events = sum(c.acc.requests for c in flushes[0].scopes)
        sink.write(flushes[0])  # warm-up (first-use costs of the client and engine)
        flushes = flushes[1:]
        convert_s, write_s, write_cpu_s = [], [], []
        for flush in flushes:
            t = time.perf_counter()
            flush_columns(flush)
            convert_s.append(time.perf_counter() - t)
            t, cpu = time.perf_counter(), time.process_time()
            sink.write(flush)
            write_s.append(time.perf_counter() - t)
            write_cpu_s.append(time.process_time() - cpu)
        redeliver_s = []
        for flush in flushes[: max(1, len(flushes) // 3)]:
            t = time.perf_counter()
            sink.write(flush)
            redeliver_s.append(time.perf_counter() - t)

        stored = client.rows(f"SELECT sum(requests) FROM {settings.database}.agg_1d")[0][0]
        stored -= warmup_events
        client.command(f"DROP DATABASE {settings.database} SYNC")

    rows = sum(len(f.scopes) + len(f.proxies) + len(f.ranges) for f in flushes)
    events = sum(c.acc.requests for f in flushes for c in f.scopes)
    if stored != events:
        raise SystemExit(f"stored {stored} requests, wrote {events}: the benchmark is broken")
    total_write_s = sum(write_s)
    result: dict[str, Any] = {
        "benchmark": "storage_insert",
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "dsn_kind": "chdb" if dsn.startswith("chdb") else "server",
        "parameters": vars(args) | {"dsn": "chdb-temp" if not args.dsn else "given"},
        "flushes": len(flushes),
        "rows_per_flush_mean": rows / len(flushes),
        "scope_rows_per_flush_mean": sum(len(f.scopes) for f in flushes) / len(flushes),
        "proxy_rows_per_flush_mean": sum(len(f.proxies) for f in flushes) / len(flushes),
        "events_per_flush_mean": events / len(flushes),
        "build_flushes_s": build_s,
        "write": summary(write_s),
        "write_cpu": summary(write_cpu_s),
        "convert_columns": summary(convert_s),
        "redelivered_write": summary(redeliver_s),
        "rows_per_s": rows / total_write_s,
        "events_represented_per_s": events / total_write_s,
        "rows_per_cpu_s": rows / sum(write_cpu_s),
        "events_represented_per_cpu_s": events / sum(write_cpu_s),
        "load_average_1m": os.getloadavg()[0],
        "note": "wall times include waiting for the CPU on a shared machine; the CPU times "
        "(process_time: Python and the in-process engine's threads) are the robust numbers",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"flushes: {len(flushes)}, rows/flush: {result['rows_per_flush_mean']:.0f} "
        f"({result['scope_rows_per_flush_mean']:.0f} pool x region, "
        f"{result['proxy_rows_per_flush_mean']:.0f} per proxy), "
        f"events/flush: {result['events_per_flush_mean']:.0f}"
    )
    w, c, r = result["write"], result["convert_columns"], result["redelivered_write"]
    print(
        f"write():        mean {w['mean_ms']:.1f} ms, p50 {w['p50_ms']:.1f} ms, "
        f"max {w['max_ms']:.1f} ms"
    )
    print(f"  of which columns: mean {c['mean_ms']:.1f} ms")
    print(f"  CPU (process, incl. engine threads): mean {result['write_cpu']['mean_ms']:.1f} ms")
    print(f"re-delivered:   mean {r['mean_ms']:.1f} ms (deduplicated)")
    print(
        f"insert throughput: {result['rows_per_s']:,.0f} rows/s, "
        f"{result['events_represented_per_s']:,.0f} events/s represented"
    )
    print(
        f"per CPU second: {result['rows_per_cpu_s']:,.0f} rows, "
        f"{result['events_represented_per_cpu_s']:,.0f} events represented "
        f"(load average {result['load_average_1m']:.1f} on {os.cpu_count()} CPUs)"
    )
    print(f"results: {RESULTS}")


if __name__ == "__main__":
    main()
