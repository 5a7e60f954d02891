"""Stream worker benchmark: Kafka -> Faust worker -> ClickHouse (embedded chDB), real broker.

1. drain: a backlog of ``--events`` events (the demo fleet, 500-event envelopes keyed by pool,
   zstd like the producer's default) is written to a topic of ``--partitions`` partitions first;
   then ONE worker (in this process, Faust app + chDB) is started and timed until every record
   is stored and its offset committed. Reports events/s and process CPU per event (all threads:
   decoding, aggregation, Faust, the chDB inserts).
2. live: ``proxywhirl-metrics simulate`` (a separate process, as a fleet host) produces at
   ``--live-rate`` events/s for ``--live-seconds`` while the worker consumes with the default
   pipeline settings (10 s windows, 5 s grace, 1 s flushes). Reports the delay from an event's
   time (emit) to its partial sum being stored, i.e. queryable (p50/p99), and from a window's
   end to the complete window stored, against the target "window + 2 s".

The broker: ``--bootstrap HOST:PORT``, else a single-node Kafka from the Maven Central jars
(tests/support), stopped afterwards. Writes benchmarks/results/worker_throughput.json.

The drain runs on v1 envelopes (events) and on v2 envelopes (columnar, schema v2) with the
same events, one after the other on the same broker (``--envelopes``).

Run: .venv/bin/python benchmarks/worker_throughput.py [--events 1000000] [--partitions 4]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import msgspec  # noqa: E402
from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped, unused-ignore]  # noqa: E402

from producer.columnar import encode_columnar  # noqa: E402
from schemas.wire import WireBatch, WireEvent, encode_batch  # noqa: E402
from stream_app.simulator import FleetSimulator, load_scenario  # noqa: E402
from stream_app.storage.settings import StorageSettings  # noqa: E402
from stream_app.worker.gc_tuning import tune_gc  # noqa: E402
from stream_app.worker.service import WorkerService  # noqa: E402
from stream_app.worker.settings import WorkerSettings  # noqa: E402
from stream_app.worker.topics import create_topics  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "worker_throughput.json"
ENVELOPE_EVENTS = 500


@contextlib.contextmanager
def _broker(bootstrap: str | None) -> Iterator[str]:
    if bootstrap:
        yield bootstrap
        return
    from tests.support.kafka_broker import KafkaBroker
    from tests.support.kafka_dist import kafka_distribution
    from tests.support.settings import HarnessSettings

    with tempfile.TemporaryDirectory(prefix="pwm-bench-kafka-") as work:
        broker = KafkaBroker(kafka_distribution(HarnessSettings()), Path(work), heap_mb=768)
        broker.start()
        try:
            yield broker.bootstrap
        finally:
            broker.close()


def _encode(batch: WireBatch, wire: str) -> bytes:
    if wire == "v2":
        return encode_columnar(
            batch.events,
            batch_id=batch.batch_id,
            source_host=batch.source_host,
            pool=batch.pool,
            sent_ms=batch.sent_ms,
        )
    return encode_batch(batch)


def _envelopes(events: list[WireEvent], wire: str) -> Iterator[tuple[str, bytes]]:
    """500-event envelopes per pool in event order, as the producer builds them; ``wire`` is
    the schema version of the envelopes (``v1``: events, ``v2``: columns)."""
    open_batches: dict[str, list[WireEvent]] = {}
    n = 0
    for ev in events:
        batch = open_batches.setdefault(ev.pool, [])
        batch.append(ev)
        if len(batch) == ENVELOPE_EVENTS:
            n += 1
            envelope = WireBatch(
                batch_id=f"b{n}", source_host="bench", pool=ev.pool, sent_ms=ev.ts_ms, events=batch
            )
            yield ev.pool, _encode(envelope, wire)
            del open_batches[ev.pool]
    for pool, batch in open_batches.items():
        n += 1
        envelope = WireBatch(
            batch_id=f"b{n}", source_host="bench", pool=pool, sent_ms=batch[-1].ts_ms, events=batch
        )
        yield pool, _encode(envelope, wire)


async def _fill(bootstrap: str, topic: str, events: list[WireEvent], wire: str) -> int:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        compression_type="zstd",
        linger_ms=5,
        acks="all",
        max_request_size=8 * 1024 * 1024,
        max_batch_size=2 * 1024 * 1024,
    )
    await producer.start()
    records = 0
    try:
        for pool, payload in _envelopes(events, wire):
            await producer.send(topic, payload, key=pool.encode())
            records += 1
        await producer.flush()
    finally:
        await producer.stop()
    return records


def _settings(bootstrap: str, prefix: str, partitions: int, **extra: Any) -> WorkerSettings:
    return WorkerSettings(
        bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        app_id=prefix,
        metrics_port=0,
        topics={"requests_partitions": partitions},
        **extra,
    )


async def _until(condition: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not reached")
        await asyncio.sleep(0.05)


def _demo_events(args: argparse.Namespace) -> list[WireEvent]:
    """The demo fleet (the simulator's default scenario, seed 3), ending now."""
    now_ms = time.time_ns() // 1_000_000
    scenario = load_scenario(None).with_total_rate(args.fleet_rate)
    span_ms = int(args.events / args.fleet_rate * 1000)
    sim = FleetSimulator(scenario, seed=3, origin_ms=now_ms - span_ms)
    return list(sim.events_between(now_ms - span_ms, now_ms))[: args.events]


def _fleet_events(args: argparse.Namespace) -> list[WireEvent]:
    """The fleet-scale profile of core_throughput.py (50 pools x 20 regions x 10k proxies),
    moved in time to end now."""
    from core_throughput import generate

    records = generate("fleet", args.fleet_events, int(args.fleet_rate), ENVELOPE_EVENTS, 1)
    events = [ev for record in records for ev in record.events]
    shift_ms = time.time_ns() // 1_000_000 - max(ev.ts_ms for ev in events)
    return [msgspec.structs.replace(ev, ts_ms=ev.ts_ms + shift_ms) for ev in events]


async def drain(
    bootstrap: str,
    chdb_dir: Path,
    args: argparse.Namespace,
    wire: str = "v1",
    fleet: bool = False,
) -> dict[str, Any]:
    label = f"{wire}-fleet" if fleet else wire
    prefix = f"bench-drain-{label}-{uuid.uuid4().hex[:6]}"
    settings = _settings(bootstrap, prefix, args.partitions)
    await create_topics(settings)
    events = _fleet_events(args) if fleet else _demo_events(args)
    started = time.perf_counter()
    records = await _fill(bootstrap, settings.requests_topic, events, wire)
    fill_s = time.perf_counter() - started
    print(
        f"drain {label}: {len(events)} events in {records} records written in {fill_s:.1f} s",
        flush=True,
    )

    storage = StorageSettings(
        dsn=f"chdb://{chdb_dir}", database=f"bench_drain_{label.replace('-', '_')}"
    )
    service = WorkerService(settings, storage)
    await service.start()
    worker = service.worker
    assert worker is not None
    try:
        await _until(lambda: len(worker.partitions) == args.partitions, 120)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        await _until(
            lambda: (
                worker.stats.events >= len(events)
                and worker.stats.cycles > 0
                and sum(worker.lag.values()) == 0
                and all(
                    (s := worker.partition_state(p)) is not None
                    and (
                        s.next_offset == 0
                        or (s.committed is not None and s.committed.offset >= s.next_offset)
                    )
                    for p in worker.partitions
                )
            ),
            args.timeout,
        )
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
        stats = worker.stats
        result = {
            "envelopes": wire,
            "fleet": "50 pools x 20 regions x 10k proxies" if fleet else "demo",
            "events": len(events),
            "records": records,
            "partitions": args.partitions,
            "seconds": round(wall, 2),
            "events_per_s": round(len(events) / wall),
            "cpu_us_per_event": round(cpu / len(events) * 1e6, 2),
            "cpu_cores_used": round(cpu / wall, 2),
            "flushes": stats.flushes,
            "rows_per_flush": round(stats.flush_rows / max(1, stats.flushes)),
            "late_events": stats.late_events,
        }
    finally:
        await service.stop()
    print(
        f"drain {label}: {result['events_per_s']:,} events/s, "
        f"{result['cpu_us_per_event']} us CPU/event, load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    print(f"drain {label}: {json.dumps(result)}", flush=True)
    return result


async def live(bootstrap: str, chdb_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    prefix = f"bench-live-{uuid.uuid4().hex[:6]}"
    settings = _settings(bootstrap, prefix, args.partitions)
    storage = StorageSettings(dsn=f"chdb://{chdb_dir}", database="bench_live")
    service = WorkerService(settings, storage)
    await service.start()
    worker = service.worker
    assert worker is not None
    try:
        await _until(lambda: len(worker.partitions) == args.partitions, 120)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        simulate = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "stream_app.cli_worker",
            "--log-level",
            "WARNING",
            "simulate",
            "--bootstrap-servers",
            bootstrap,
            "--topic-prefix",
            prefix,
            "--rate",
            str(args.live_rate),
            "--duration",
            str(args.live_seconds),
            "--seed",
            "9",
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await simulate.communicate()
        if simulate.returncode != 0:
            raise RuntimeError(f"simulate failed: {err.decode()}")
        summary = out.decode().strip().splitlines()[-1]
        emitted = int(summary.split("simulate: ")[1].split(" events")[0])
        await _until(lambda: worker.stats.events >= emitted, args.timeout)
        window_s = settings.pipeline.window_s
        # wait for the last windows to close (grace + idle) so the window delays are complete
        await _until(
            lambda: (
                worker.stats.window_delay.count > 0
                and all(
                    (s := worker.partition_state(p)) is not None
                    and s.aggregator.stats.open_windows == 0
                    for p in worker.partitions
                )
            ),
            args.timeout,
        )
        stored, closed = worker.stats.stored_delay, worker.stats.window_delay

        def q(h: Any, p: float) -> float:
            return round((h.quantile(p) or 0.0) / 1000.0, 2)

        result = {
            "rate_per_s": args.live_rate,
            "seconds": args.live_seconds,
            "events": emitted,
            "window_s": window_s,
            "grace_ms": settings.pipeline.grace_ms,
            "flush_interval_ms": settings.pipeline.flush_interval_ms,
            "event_to_stored_s": {
                "p50": q(stored, 0.5),
                "p99": q(stored, 0.99),
                "max": q(stored, 1.0),
            },
            "window_end_to_complete_s": {"p50": q(closed, 0.5), "p99": q(closed, 0.99)},
            "target_s": window_s + 2,
            "late_events": worker.stats.late_events,
        }
    finally:
        await service.stop()
    print(f"live: {json.dumps(result)}", flush=True)
    return result


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with (
        _broker(args.bootstrap) as bootstrap,
        tempfile.TemporaryDirectory(prefix="pwm-bench-chdb-") as chdb,
    ):
        out: dict[str, Any] = {}
        if not args.skip_drain:
            for wire in ("v1", "v2") if args.envelopes == "both" else (args.envelopes,):
                key = "drain" if wire == "v1" else "drain_v2"
                out[key] = await drain(bootstrap, Path(chdb), args, wire)
            if args.fleet_events:
                out["drain_fleet"] = await drain(bootstrap, Path(chdb), args, "v2", fleet=True)
        if not args.skip_live:
            out["live"] = await live(bootstrap, Path(chdb), args)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--fleet-events",
        type=int,
        default=0,
        help="also drain this many events of the fleet-scale profile as v2 envelopes (0: no)",
    )
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--fleet-rate", type=float, default=20_000.0, help="event-time rate of the backlog"
    )
    parser.add_argument("--live-rate", type=float, default=20_000.0)
    parser.add_argument("--live-seconds", type=float, default=40.0)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--skip-drain", action="store_true")
    parser.add_argument("--skip-live", action="store_true")
    parser.add_argument(
        "--envelopes",
        choices=["v1", "v2", "both"],
        default="both",
        help="drain v1 (events) or v2 (columnar) envelopes, or both in the same run",
    )
    parser.add_argument("--no-save", action="store_true", help="print only, write no results")
    parser.add_argument(
        "--gc-threshold0",
        type=int,
        default=None,
        help="tune the garbage collector as `proxywhirl-metrics worker` does (0: Python default)",
    )
    args = parser.parse_args()
    if args.gc_threshold0 is not None:
        tune_gc(args.gc_threshold0)
    import logging

    logging.basicConfig(level=logging.WARNING)
    load = os.getloadavg()
    results = asyncio.run(main_async(args))
    doc = {
        "benchmark": "worker_throughput",
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in load],
        },
        "parameters": {k: v for k, v in vars(args).items() if k != "bootstrap"},
        **results,
    }
    if args.no_save:
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
