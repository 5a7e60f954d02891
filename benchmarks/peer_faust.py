"""Peer: Faust with one event per record, the stack without envelopes.

A faust-streaming app as its documentation writes one: the events as a ``faust.Record`` (JSON,
one per message, from the run's backlog topic ``<prefix>.events``, keyed by ``pool|region``),
an agent, and a windowed table (``app.Table(...).tumbling(10 s)``, relative to the event's own
time) holding per ``pool|region`` the window's events, successes and latency sum, the memory
store with its changelog topic (Faust's default durability). It drains the topic from the start
with a new consumer group until it has processed ``--max-events`` events (the first ones of
the backlog: Faust at one event per record is slow enough that the whole backlog would
dominate the run), and reports events/s and the process's CPU per event, both measured from
the first event to the last.

Run: .venv/bin/python benchmarks/peer_faust.py [--backlog manifest.json | --events N] [--tiny]
Writes benchmarks/results/peer_faust.json (``peer_faust.tiny.json`` with --tiny).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import faust  # noqa: E402

from benchmarks.bench_env import load_average, write_result  # noqa: E402
from benchmarks.peer_backlog import Backlog, add_backlog_arguments, backlog_for  # noqa: E402

WINDOW_S = 10.0


class Event(faust.Record, serializer="json"):
    """One request event as the wire's JSON has it (schemas.wire.WireEvent)."""

    event_id: str
    ts_ms: int
    pool: str
    region: str
    outcome: str
    latency_ms: float
    source_host: str
    proxy_id: str | None = None
    status_code: int | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    attempts: int = 1
    target_domain: str | None = None
    schema_version: int = 1


async def drain(backlog: Backlog, max_events: int, timeout_s: float) -> dict[str, Any]:
    app_id = f"bench-faust-{uuid.uuid4().hex[:6]}"
    app = faust.App(
        app_id,
        broker=f"kafka://{backlog.bootstrap}",
        store="memory://",
        autodiscover=False,
        web_enabled=False,
        topic_partitions=backlog.partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
    )
    topic = app.topic(backlog.event_topic, key_type=str, value_type=Event)
    table = app.Table("scope_windows", default=dict, partitions=backlog.partitions).tumbling(
        WINDOW_S, expires=WINDOW_S * 6
    )
    # the event's own time (WindowWrapper has relative_to; its abstract type does not)
    table = table.relative_to(lambda event: event.value.ts_ms / 1000.0)  # type: ignore[attr-defined]
    total = min(max_events, backlog.events)
    seen = {"events": 0, "first": 0.0, "last": 0.0, "cpu_first": 0.0, "cpu_last": 0.0}
    done = asyncio.Event()

    failed: list[BaseException] = []

    async def count(stream: faust.StreamT[Event]) -> None:
        try:
            await _count(stream)
        except Exception as exc:  # a crashed agent ends the run instead of hanging it
            failed.append(exc)
            done.set()
            raise

    async def _count(stream: faust.StreamT[Event]) -> None:
        async for ev in stream:
            if seen["events"] == 0:
                seen["first"], seen["cpu_first"] = time.perf_counter(), time.process_time()
            key = f"{ev.pool}|{ev.region}"
            acc = table[key].value()
            table[key] = {
                "events": acc.get("events", 0) + 1,
                "success": acc.get("success", 0) + (ev.outcome == "success"),
                "latency_ms_sum": acc.get("latency_ms_sum", 0.0) + ev.latency_ms,
            }
            seen["events"] += 1
            if seen["events"] == total:
                seen["last"], seen["cpu_last"] = time.perf_counter(), time.process_time()
                done.set()

    app.agent(topic, name="count")(count)
    await app.start()
    try:
        await asyncio.wait_for(done.wait(), timeout_s)
    finally:
        await app.stop()
    if failed:
        raise RuntimeError("the Faust agent crashed") from failed[0]
    wall = seen["last"] - seen["first"]
    cpu = seen["cpu_last"] - seen["cpu_first"]
    return {
        "events": total,
        "seconds": round(wall, 3),
        "events_per_s": round(total / wall),
        "cpu_us_per_event": round(cpu / total * 1e6, 3),
        "window_s": WINDOW_S,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_backlog_arguments(parser, default_events=100_000)
    parser.add_argument("--max-events", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    if args.tiny:
        args.events = min(args.events, 10_000)
        args.max_events = min(args.max_events, 10_000)
    logging.basicConfig(level=logging.WARNING)
    with backlog_for(args) as backlog:
        load_before = load_average()
        result = asyncio.run(drain(backlog, args.max_events, args.timeout))
    print(f"peer_faust: {json.dumps(result)}", flush=True)
    path = write_result(
        "peer_faust",
        {
            "load_average_before": load_before,
            "load_average_after": load_average(),
            "backlog": {"events": backlog.events},
            "drain": result,
        },
        tiny=args.tiny,
    )
    print(f"written {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
