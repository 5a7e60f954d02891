"""Producer-side cost of shipping events to Kafka, per compression codec.

Two measurements per codec (none, gzip, lz4, zstd, snappy):
1. codec only: CPU per event to compress realistic 500-event envelopes with aiokafka's own codec
   functions (what its record-batch builder calls; gzip and lz4 at aiokafka's level 9, zstd at
   level 3), and the compression ratio;
2. end to end: emit() -> MetricsProducer -> KafkaTransport -> a real broker with acks=all, this
   process's CPU time per event (emit, encode, compress, aiokafka) and the wall-clock rate until
   the last envelope is acknowledged.

The broker: ``--bootstrap HOST:PORT`` (or ``KAFKA_BOOTSTRAP_SERVERS``); otherwise a single-node
broker is started from the Maven Central jars with the test harness (tests/support), and stopped
at the end.

Run: .venv/bin/python benchmarks/producer_kafka.py [--events N] [--bootstrap HOST:PORT]
Writes benchmarks/results/producer_kafka.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from aiokafka import codec  # type: ignore[import-untyped, unused-ignore]

from producer import MetricsProducer, Outcome, ProducerSettings
from producer.envelope import build_envelope
from producer.kafka import KafkaTransport, KafkaTransportSettings
from schemas.wire import WireEvent

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "producer_kafka.json"
CODECS = ("none", "gzip", "lz4", "zstd", "snappy")
_ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "none": lambda b: b,
    "gzip": codec.gzip_encode,
    "lz4": codec.lz4_encode,
    "zstd": codec.zstd_encode,
    "snappy": codec.snappy_encode,
}


def _records(count: int, rng: random.Random, tag: str) -> list[WireEvent]:
    proxies = [f"{rng.getrandbits(128):032x}" for _ in range(2000)]
    outcomes = [Outcome.SUCCESS] * 8 + [Outcome.TIMEOUT, Outcome.HTTP_ERROR]
    now_ms = time.time_ns() // 1_000_000
    return [
        WireEvent(
            event_id=f"{tag}{i:x}",
            ts_ms=now_ms + i,
            pool="pool-1",
            region=rng.choice(["eu-west", "us-east", "ap-south"]),
            outcome=rng.choice(outcomes),
            latency_ms=round(rng.lognormvariate(5.0, 1.0), 3),
            source_host="fleet-host-17",
            proxy_id=rng.choice(proxies),
            status_code=rng.choice([200, 200, 200, 404, 503]),
            bytes_in=rng.randrange(100, 50_000),
            bytes_out=rng.randrange(100, 2_000),
            attempts=1,
            target_domain=rng.choice(["example.com", "api.shop.example", None]),
        )
        for i in range(count)
    ]


def codec_costs(rounds: int) -> dict[str, dict[str, float]]:
    rng = random.Random(7)
    payloads = [
        build_envelope(
            "pool-1",
            _records(500, rng, f"{uuid.uuid4().hex[:16]}-"),
            source_host="fleet-host-17",
            batch_id=f"fleet-host-17-x-{n}",
        ).payload
        for n in range(8)
    ]
    raw = sum(len(p) for p in payloads)
    out: dict[str, dict[str, float]] = {}
    for name in CODECS:
        encode = _ENCODERS[name]
        compressed = sum(len(encode(p)) for p in payloads)
        started = time.process_time()
        for _ in range(rounds):
            for p in payloads:
                encode(p)
        cpu_s = time.process_time() - started
        out[name] = {
            "cpu_us_per_event": cpu_s / (rounds * 500 * len(payloads)) * 1e6,
            "ratio": raw / compressed,
            "bytes_per_event": compressed / (500 * len(payloads)),
        }
    return out


def end_to_end(bootstrap: str, compression: str, events: int) -> dict[str, float]:
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    _create_topic(bootstrap, f"{prefix}.requests")
    transport = KafkaTransport(
        KafkaTransportSettings(
            bootstrap_servers=bootstrap,
            topic_prefix=prefix,
            compression=compression,
        )
    )
    producer = MetricsProducer(
        ProducerSettings(
            source_host="bench-host",
            fleet_key="benchmark-fleet-key",
            max_buffer_events=events + 1,
            close_at_exit=False,
        ),
        transport,
    )
    deadline = time.monotonic() + 60
    while not transport.stats().connected:
        if time.monotonic() > deadline:
            raise RuntimeError("the transport did not connect")
        time.sleep(0.01)
    rng = random.Random(3)
    pools = [f"pool-{i}" for i in range(8)]
    proxies = [producer.proxy_id(f"10.0.{i // 250}.{i % 250}:8080") for i in range(2000)]
    args = [
        (rng.choice(pools), rng.choice(proxies), rng.lognormvariate(5.0, 1.0))
        for _ in range(events)
    ]
    cpu0, wall0 = time.process_time(), time.monotonic()
    for pool, pid, latency in args:
        producer.emit(
            pool=pool, region="eu", proxy_id=pid, latency_ms=latency, status_code=200, bytes_in=900
        )
    producer.flush(timeout_s=120)
    deadline = time.monotonic() + 120
    while transport.stats().sent_events < events and time.monotonic() < deadline:
        time.sleep(0.005)
    cpu_s, wall_s = time.process_time() - cpu0, time.monotonic() - wall0
    stats = transport.stats()
    producer.close()
    return {
        "events": events,
        "acknowledged": stats.sent_events,
        "spooled_events": stats.spooled_events,
        "cpu_us_per_event": cpu_s / events * 1e6,
        "events_per_s": events / wall_s,
    }


def _create_topic(bootstrap: str, topic: str) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.support.kafka_admin import create_topic

    asyncio.run(create_topic(bootstrap, topic, partitions=3))


@contextlib.contextmanager
def _broker(bootstrap: str | None) -> Iterator[str]:
    if bootstrap:
        yield bootstrap
        return
    sys.path.insert(0, str(ROOT))
    from tests.support.kafka_broker import KafkaBroker
    from tests.support.kafka_dist import kafka_distribution
    from tests.support.settings import HarnessSettings

    with tempfile.TemporaryDirectory(prefix="pwm-bench-kafka-") as work:
        broker = KafkaBroker(kafka_distribution(HarnessSettings()), Path(work))
        broker.start()
        try:
            yield broker.bootstrap
        finally:
            broker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events per codec, end to end")
    parser.add_argument("--rounds", type=int, default=20, help="codec-only repetitions")
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    ns = parser.parse_args()

    report: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "envelope_events": 500,
    }
    report["codec_only"] = codec_costs(ns.rounds)
    print("codec only (500-event envelopes):")
    for name, r in report["codec_only"].items():
        print(
            f"  {name:<7} {r['cpu_us_per_event']:6.2f} us/event  ratio x{r['ratio']:5.2f}  "
            f"{r['bytes_per_event']:6.1f} B/event"
        )
    report["end_to_end"] = {}
    with _broker(ns.bootstrap) as bootstrap:
        end_to_end(bootstrap, "none", min(ns.events, 20_000))  # warm-up
        for name in CODECS:
            r = end_to_end(bootstrap, name, ns.events)
            report["end_to_end"][name] = r
            print(
                f"  e2e {name:<7} {r['cpu_us_per_event']:6.2f} us CPU/event  "
                f"{r['events_per_s']:>9.0f} events/s  acked {r['acknowledged']}"
            )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
