"""One backlog of demo-fleet events for the peer benchmarks, written once per run, two ways.

* ``<prefix>.requests``: the project's records, 500-event envelopes per pool
  (``schemas.wire.encode_batch``), keyed by pool, what ``proxywhirl-metrics`` producers send;
* ``<prefix>.columns``: the same envelopes in the columnar schema v2
  (``producer.columnar.encode_columnar``);
* ``<prefix>.events``: the same events one per message, each the event's JSON object
  (``schemas.wire.encode_event``), keyed by ``pool|region``: what a stream processor's users
  write without envelopes.

Both topics have ``--partitions`` partitions, zstd batches (the producer's default codec) and
hold the events of :class:`stream_app.simulator.FleetSimulator` (the demo fleet, seed 3, at
``--fleet-rate`` events/s of event time), the data ``worker_throughput.py`` drains. The backlog
is described by a small JSON manifest (:class:`Backlog`) that every peer takes with
``--backlog PATH``; without one a peer starts its own broker (tests/support, Maven jars) and
writes its own backlog (:func:`backlog_for`).

Run: .venv/bin/python benchmarks/peer_backlog.py --bootstrap HOST:PORT --out manifest.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ENVELOPE_EVENTS = 500
SEED = 3


@dataclass(frozen=True)
class Backlog:
    bootstrap: str
    prefix: str
    envelope_topic: str
    event_topic: str
    columnar_topic: str
    partitions: int
    events: int
    envelope_records: int
    fill_s: float

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Backlog:
        return cls(**json.loads(path.read_text()))


@contextlib.contextmanager
def kafka_broker(bootstrap: str | None) -> Iterator[str]:
    """``bootstrap`` as given, else a single-node broker of the test harness, closed after.

    Give an external broker ``group.initial.rebalance.delay.ms`` of a few seconds (Kafka's
    default is 3 s) for ``worker_scaling.py``'s workers to share the partitions from the start.
    """
    if bootstrap:
        yield bootstrap
        return
    from tests.support.kafka_broker import KafkaBroker
    from tests.support.kafka_dist import kafka_distribution
    from tests.support.settings import HarnessSettings

    with tempfile.TemporaryDirectory(prefix="pwm-bench-kafka-") as work:
        broker = KafkaBroker(
            kafka_distribution(HarnessSettings()),
            Path(work),
            heap_mb=768,
            # Kafka's default (the harness uses 0 for fast tests): a new group's first
            # assignment waits for members joining within 3 s, so workers started together
            # share the partitions from the start (worker_scaling.py)
            extra_config={"group.initial.rebalance.delay.ms": "3000"},
        )
        broker.start()
        try:
            yield broker.bootstrap
        finally:
            broker.close()


def demo_events(count: int, fleet_rate: float) -> list[Any]:
    from stream_app.simulator import FleetSimulator, load_scenario

    now_ms = time.time_ns() // 1_000_000
    scenario = load_scenario(None).with_total_rate(fleet_rate)
    span_ms = int(count / fleet_rate * 1000)  # as worker_throughput.py: the same events
    sim = FleetSimulator(scenario, seed=SEED, origin_ms=now_ms - span_ms)
    return list(sim.events_between(now_ms - span_ms, now_ms))[:count]


def envelopes(events: list[Any], columnar: bool = False) -> Iterator[tuple[bytes, bytes]]:
    """(key, record) of 500-event envelopes per pool in event order, as the producer builds
    them: schema v1 (events), or v2 (columns) with ``columnar``."""
    from producer.columnar import encode_columnar
    from schemas.wire import WireBatch, encode_batch

    open_batches: dict[str, list[Any]] = {}
    n = 0

    def record(pool: str, batch: list[Any]) -> tuple[bytes, bytes]:
        nonlocal n
        n += 1
        if columnar:
            return pool.encode(), encode_columnar(
                batch, batch_id=f"b{n}", source_host="bench", pool=pool, sent_ms=batch[-1].ts_ms
            )
        envelope = WireBatch(
            batch_id=f"b{n}", source_host="bench", pool=pool, sent_ms=batch[-1].ts_ms, events=batch
        )
        return pool.encode(), encode_batch(envelope)

    for ev in events:
        batch = open_batches.setdefault(ev.pool, [])
        batch.append(ev)
        if len(batch) == ENVELOPE_EVENTS:
            yield record(ev.pool, open_batches.pop(ev.pool))
    for pool, batch in open_batches.items():
        yield record(pool, batch)


async def _create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
        )
    finally:
        await admin.close()


async def _send_all(bootstrap: str, topic: str, records: Iterator[tuple[bytes, bytes]]) -> int:
    """Send keyed records in producer batches, partitioned as Kafka's default partitioner
    does (murmur2 of the key), as the project's producer and worker_throughput.py's are."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.partitioner import DefaultPartitioner

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        compression_type="zstd",
        acks="all",
        max_request_size=8 * 1024 * 1024,
        max_batch_size=1024 * 1024,
    )
    await producer.start()
    sent = 0
    try:
        partitions = sorted(await producer.partitions_for(topic))
        partitioner = DefaultPartitioner()
        batches: dict[int, Any] = {}
        pending = []
        for key, value in records:
            part = partitioner(key, partitions, partitions)
            batch = batches.get(part)
            if batch is None:
                batch = batches[part] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                pending.append(await producer.send_batch(batch, topic, partition=part))
                batch = batches[part] = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
            sent += 1
            if len(pending) > 64:
                await asyncio.gather(*pending)
                pending.clear()
        for part, batch in batches.items():
            if batch.record_count():
                pending.append(await producer.send_batch(batch, topic, partition=part))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


async def write_backlog(
    bootstrap: str, events: int, partitions: int = 4, fleet_rate: float = 20_000.0
) -> Backlog:
    from schemas.wire import encode_event

    prefix = f"bench-peers-{uuid.uuid4().hex[:6]}"
    # the envelope topic is the requests topic of a worker with topic_prefix=prefix
    envelope_topic, event_topic = f"{prefix}.requests", f"{prefix}.events"
    columnar_topic = f"{prefix}.columns"
    await _create_topics(bootstrap, [envelope_topic, event_topic, columnar_topic], partitions)
    started = time.perf_counter()
    data = demo_events(events, fleet_rate)
    records = await _send_all(bootstrap, envelope_topic, envelopes(data))
    await _send_all(bootstrap, columnar_topic, envelopes(data, columnar=True))
    await _send_all(
        bootstrap,
        event_topic,
        ((f"{ev.pool}|{ev.region}".encode(), encode_event(ev)) for ev in data),
    )
    return Backlog(
        bootstrap=bootstrap,
        prefix=prefix,
        envelope_topic=envelope_topic,
        event_topic=event_topic,
        columnar_topic=columnar_topic,
        partitions=partitions,
        events=len(data),
        envelope_records=records,
        fill_s=round(time.perf_counter() - started, 2),
    )


@contextlib.contextmanager
def backlog_for(args: argparse.Namespace) -> Iterator[Backlog]:
    """The run's backlog (``--backlog``), else a broker (``--bootstrap`` or own) and a new one."""
    if args.backlog:
        yield Backlog.load(Path(args.backlog))
        return
    with kafka_broker(args.bootstrap) as bootstrap:
        backlog = asyncio.run(write_backlog(bootstrap, args.events, args.partitions))
        print(f"backlog: {json.dumps(asdict(backlog))}", flush=True)
        yield backlog


def add_backlog_arguments(parser: argparse.ArgumentParser, default_events: int) -> None:
    parser.add_argument("--backlog", help="manifest of the run's backlog (peer_backlog.py)")
    parser.add_argument("--bootstrap", help="broker for a backlog of its own (else one started)")
    parser.add_argument("--events", type=int, default=default_events)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--tiny", action="store_true", help="a few seconds: check that it runs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--fleet-rate", type=float, default=20_000.0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    backlog = asyncio.run(
        write_backlog(args.bootstrap, args.events, args.partitions, args.fleet_rate)
    )
    backlog.save(args.out)
    print(f"backlog: {json.dumps(asdict(backlog))}", flush=True)


if __name__ == "__main__":
    main()
