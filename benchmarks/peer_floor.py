"""The floor: a plain aiokafka consumer reading the backlog's envelopes, decoding every record.

What any worker on this stack must pay at least: fetch the records (zstd) and decode them with
the project's codec, nothing stored, no commits. One consumer assigned every partition reads
from the start until it holds every record, twice: ``drain`` on the v1 envelopes
(``schemas.wire.decode_record``, touching each event: a count per pool x region) and
``drain_v2`` on the same events as columnar v2 envelopes (``schemas.column_batch.decode_any``
into numpy columns, counted per record). Reports events/s (wall) and process CPU per event.

Run: .venv/bin/python benchmarks/peer_floor.py [--backlog manifest.json | --events N] [--tiny]
Writes benchmarks/results/peer_floor.json (``peer_floor.tiny.json`` with --tiny).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_env import load_average, write_result  # noqa: E402
from benchmarks.peer_backlog import Backlog, add_backlog_arguments, backlog_for  # noqa: E402


def _count_v1(value: bytes, counts: Counter[tuple[str, str]]) -> int:
    from schemas.wire import decode_record

    batch = decode_record(value)
    for ev in batch:
        counts[(ev.pool, ev.region)] += 1
    return len(batch)


def _count_v2(value: bytes, counts: Counter[tuple[str, str]]) -> int:
    from schemas.column_batch import decode_any

    return len(decode_any(value))  # type: ignore[arg-type]  # v2 records here: a ColumnBatch


async def drain(backlog: Backlog, topic: str, columnar: bool) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=backlog.bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(backlog.partitions)]
        count = _count_v2 if columnar else _count_v1
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        records_total = sum(ends.values())
        counts: Counter[tuple[str, str]] = Counter()
        events = records = 0
        wall0, cpu0 = time.perf_counter(), time.process_time()
        while records < records_total:
            fetched = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for messages in fetched.values():
                for message in messages:
                    events += count(message.value, counts)
                records += sum(1 for _ in messages)
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
    finally:
        await consumer.stop()
    return {
        "events": events,
        "records": records,
        "scopes": len(counts),
        "seconds": round(wall, 3),
        "events_per_s": round(events / wall),
        "cpu_us_per_event": round(cpu / events * 1e6, 3),
        "cpu_cores_used": round(cpu / wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_backlog_arguments(parser, default_events=500_000)
    args = parser.parse_args()
    if args.tiny and not args.backlog:
        args.events = min(args.events, 20_000)
    with backlog_for(args) as backlog:
        load_before = load_average()
        result = asyncio.run(drain(backlog, backlog.envelope_topic, columnar=False))
        print(f"peer_floor v1: {json.dumps(result)}", flush=True)
        result_v2 = asyncio.run(drain(backlog, backlog.columnar_topic, columnar=True))
        print(f"peer_floor v2: {json.dumps(result_v2)}", flush=True)
    path = write_result(
        "peer_floor",
        {
            "load_average_before": load_before,
            "load_average_after": load_average(),
            "backlog": {"events": backlog.events, "records": backlog.envelope_records},
            "drain": result,
            "drain_v2": result_v2,
        },
        tiny=args.tiny,
    )
    print(f"written {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
