"""Throughput of the pure stream core: decode, aggregate (add + flush + close), and both.

Generates a realistic stream of batch envelopes (one pool per envelope, as producers send them),
event time following a simulated wall clock at ``--rate`` events per second, events out of order
within the grace and a small share late beyond it, 5% without a proxy id. The runtime's cadence is
imitated: every record is added with the wall clock of its arrival, and every ``--flush-s`` of
simulated time the aggregator is flushed and due windows are closed.

Times are CPU time of this process (``time.process_time``), best of ``--repeat`` runs, because
the machine is shared; wall time of the best run is reported beside it. ``aggregate`` is the
steady state: add, flush and close_due along the stream. ``aggregate+final close`` also closes
every window still open at the end (all proxy windows of the run at once, which a long-running
worker spreads over its 60 s proxy windows).

Profiles: ``small`` (8 pools x 4 regions x 400 proxies, the default) and ``fleet`` (50 pools x
20 regions x 10,000 proxies, the design's scale target).

Each phase runs on v1 envelopes and, marked ``v2``, on the same events as columnar envelopes
(schema v2: decoded into arrays, counted by ``WindowAggregator.add_columns``).

Run: .venv/bin/python benchmarks/core_throughput.py [--profile fleet] [--events N] [--no-save]
Writes benchmarks/results/core_throughput.json (merged per profile).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from producer.columnar import encode_columnar  # noqa: E402
from schemas.column_batch import ColumnBatch, decode_any  # noqa: E402
from schemas.events import Outcome  # noqa: E402
from schemas.wire import WireBatch, WireEvent, decode_record, encode_batch  # noqa: E402
from stream_app.core.aggregator import WindowAggregator  # noqa: E402
from stream_app.core.config import AggregatorConfig  # noqa: E402

RESULTS = REPO_ROOT / "benchmarks" / "results" / "core_throughput.json"
T0_MS = 1_699_999_200_000

PROFILES = {
    "small": {"pools": 8, "regions": 4, "proxies": 400},
    "fleet": {"pools": 50, "regions": 20, "proxies": 10_000},
}
OUTCOMES = [
    (Outcome.SUCCESS, 0.93, 200),
    (Outcome.HTTP_ERROR, 0.03, 502),
    (Outcome.TIMEOUT, 0.02, None),
    (Outcome.CONNECTION_ERROR, 0.01, None),
    (Outcome.PROXY_ERROR, 0.005, 407),
    (Outcome.RATE_LIMITED, 0.005, 429),
]


@dataclass(frozen=True)
class Record:
    payload: bytes
    events: list[WireEvent]
    arrival_ms: int
    payload_v2: bytes
    """The same events as a columnar envelope (schema v2)."""


def generate(profile: str, total: int, rate_per_s: int, batch: int, seed: int) -> list[Record]:
    shape = PROFILES[profile]
    rng = random.Random(seed)
    pools = [f"pool-{i:02d}" for i in range(shape["pools"])]
    regions = [f"region-{i:02d}" for i in range(shape["regions"])]
    region_latency = {r: rng.uniform(30.0, 250.0) for r in regions}
    # Every proxy lives in one pool and one region; ids are hex digests, as producers send them.
    fleet: dict[str, list[tuple[str, str]]] = {p: [] for p in pools}
    for i in range(shape["proxies"]):
        pool = pools[i % len(pools)]
        proxy_id = hashlib.sha256(f"proxy-{i}".encode()).hexdigest()[:32]
        fleet[pool].append((rng.choice(regions), proxy_id))
    weights = [w for _, w, _ in OUTCOMES]
    records: list[Record] = []
    made = 0
    clock_ms = float(T0_MS)
    step_ms = 1000.0 / rate_per_s
    while made < total:
        pool = rng.choice(pools)
        size = min(batch, total - made)
        events = []
        for _ in range(size):
            clock_ms += step_ms
            region, proxy_id = rng.choice(fleet[pool])
            outcome, _, status = rng.choices(OUTCOMES, weights)[0]
            jitter_ms = rng.randint(0, 2_000) if rng.random() < 0.3 else rng.randint(0, 200)
            if rng.random() < 0.001:
                jitter_ms = rng.randint(8_000, 30_000)  # a straggler beyond the grace
            events.append(
                WireEvent(
                    event_id=f"{made:x}",
                    ts_ms=int(clock_ms) - jitter_ms,
                    pool=pool,
                    region=region,
                    outcome=outcome,
                    latency_ms=round(rng.lognormvariate(0, 0.6) * region_latency[region], 3),
                    source_host=f"host-{pool}",
                    proxy_id=None if rng.random() < 0.05 else proxy_id,
                    status_code=status,
                    bytes_in=rng.randint(200, 200_000),
                    bytes_out=rng.randint(100, 4_000),
                    attempts=1 if rng.random() < 0.95 else 2,
                    target_domain="example.com",
                )
            )
            made += 1
        envelope = WireBatch(
            batch_id=f"b{len(records)}",
            source_host=f"host-{pool}",
            pool=pool,
            sent_ms=int(clock_ms),
            events=events,
        )
        v2 = encode_columnar(
            events,
            batch_id=envelope.batch_id,
            source_host=envelope.source_host,
            pool=pool,
            sent_ms=envelope.sent_ms,
        )
        records.append(Record(encode_batch(envelope), events, int(clock_ms) + 150, v2))
    return records


def config_for(args: argparse.Namespace) -> AggregatorConfig:
    return AggregatorConfig(
        window_s=10,
        grace_ms=5_000,
        proxy_window_s=60,
        idle_timeout_ms=10_000,
        max_proxies_per_window=200_000,
    )


def run_decode(records: list[Record], _: argparse.Namespace) -> dict[str, int]:
    events = 0
    for r in records:
        events += len(decode_record(r.payload))
    return {"events": events}


def run_decode_v2(records: list[Record], _: argparse.Namespace) -> dict[str, int]:
    events = 0
    for r in records:
        decoded = decode_any(r.payload_v2)
        assert isinstance(decoded, ColumnBatch)
        events += len(decoded)
    return {"events": events}


def _aggregate(
    records: list[Record],
    args: argparse.Namespace,
    *,
    decode: bool,
    final_close: bool,
    columnar: bool = False,
) -> dict[str, int]:
    agg = WindowAggregator(config_for(args))
    flush_every_ms = int(args.flush_s * 1000)
    next_flush = records[0].arrival_ms + flush_every_ms
    closed = flushed_rows = 0
    for offset, r in enumerate(records):
        if columnar:
            batch = decode_any(r.payload_v2)
            assert isinstance(batch, ColumnBatch)
            agg.add_columns(
                batch, source="requests", partition=0, offset=offset, now_ms=r.arrival_ms
            )
        else:
            events = decode_record(r.payload) if decode else r.events
            agg.add(events, source="requests", partition=0, offset=offset, now_ms=r.arrival_ms)
        if r.arrival_ms >= next_flush:
            flush = agg.flush()
            flushed_rows += len(flush.scopes) + len(flush.proxies)
            closed += len(agg.close_due_windows(r.arrival_ms).scopes)
            next_flush += flush_every_ms
    flush = agg.flush()
    flushed_rows += len(flush.scopes) + len(flush.proxies)
    closed_proxies = 0
    if final_close:
        windows = agg.close_due_windows(records[-1].arrival_ms + 3_600_000)
        closed += len(windows.scopes)
        closed_proxies = len(windows.proxies)
    stats = agg.stats
    return {
        "events": stats.events_accepted + stats.late_events,
        "late_events": stats.late_events,
        "flushed_rows": flushed_rows,
        "closed_pool_windows": closed,
        "closed_proxy_windows_at_end": closed_proxies,
    }


def run_aggregate(records: list[Record], args: argparse.Namespace) -> dict[str, int]:
    return _aggregate(records, args, decode=False, final_close=False)


def run_aggregate_final_close(records: list[Record], args: argparse.Namespace) -> dict[str, int]:
    return _aggregate(records, args, decode=False, final_close=True)


def run_end_to_end(records: list[Record], args: argparse.Namespace) -> dict[str, int]:
    return _aggregate(records, args, decode=True, final_close=False)


def run_end_to_end_v2(records: list[Record], args: argparse.Namespace) -> dict[str, int]:
    return _aggregate(records, args, decode=True, final_close=False, columnar=True)


def measure(
    fn: Callable[[list[Record], argparse.Namespace], dict[str, int]],
    records: list[Record],
    args: argparse.Namespace,
) -> dict[str, Any]:
    best: dict[str, Any] | None = None
    for _ in range(args.repeat):
        gc.collect()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        info = fn(records, args)
        cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
        if best is None or cpu_s < best["cpu_s"]:
            best = {"cpu_s": cpu_s, "wall_s": wall_s, **info}
    assert best is not None
    best["events_per_s_cpu"] = best["events"] / best["cpu_s"]
    best["us_per_event_cpu"] = best["cpu_s"] / best["events"] * 1e6
    return best


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_model": cpu,
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "load_average_1m": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="small")
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--rate", type=int, default=100_000, help="events/s of event time")
    parser.add_argument("--batch", type=int, default=500, help="events per envelope")
    parser.add_argument("--flush-s", type=float, default=1.0, help="simulated flush interval")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-save", action="store_true", help="print only, write no results")
    args = parser.parse_args()

    started = machine()
    records = generate(args.profile, args.events, args.rate, args.batch, args.seed)
    # The generated input is not the core's: keep it out of the garbage collector's way, as a
    # worker holds no backlog in memory (each collection would otherwise walk all of it).
    gc.collect()
    gc.freeze()
    phases = {
        "decode": run_decode,
        "aggregate": run_aggregate,
        "aggregate+final close": run_aggregate_final_close,
        "decode+aggregate": run_end_to_end,
        "decode v2": run_decode_v2,
        "decode+aggregate v2": run_end_to_end_v2,
    }
    results = {name: measure(fn, records, args) for name, fn in phases.items()}

    print(
        f"core throughput, profile {args.profile} ({PROFILES[args.profile]}), "
        f"{args.events} events in envelopes of {args.batch}, flush every {args.flush_s}s"
    )
    print(f"{'phase':22s} {'events/s (CPU)':>15s} {'us/event':>9s} {'CPU s':>7s} {'wall s':>7s}")
    for name, r in results.items():
        print(
            f"{name:22s} {r['events_per_s_cpu']:15,.0f} {r['us_per_event_cpu']:9.2f} "
            f"{r['cpu_s']:7.2f} {r['wall_s']:7.2f}"
        )
    agg = results["aggregate+final close"]
    print(
        f"late {agg['late_events']}, flushed rows {agg['flushed_rows']}, closed pool windows "
        f"{agg['closed_pool_windows']}, proxy windows closed at the end "
        f"{agg['closed_proxy_windows_at_end']}"
    )

    print(f"load average (1 min) {started['load_average_1m']:.2f} -> {os.getloadavg()[0]:.2f}")
    if args.no_save:
        return
    data: dict[str, Any] = {}
    if RESULTS.exists():
        data = json.loads(RESULTS.read_text())
    key = args.profile if args.flush_s == 1.0 else f"{args.profile}-flush-{args.flush_s:g}s"
    data[key] = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": started | {"load_average_1m_end": os.getloadavg()[0]},
        "parameters": {**vars(args), **PROFILES[args.profile]},
        "results": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(f"written to {RESULTS.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
