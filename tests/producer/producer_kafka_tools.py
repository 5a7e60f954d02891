"""Reading back what the Kafka transport wrote: every record of a topic, and the codec on disk."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped, unused-ignore]

from schemas.wire import WireBatch, decode_batch

CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


@dataclass(frozen=True)
class Consumed:
    partition: int
    offset: int
    key: bytes
    batch: WireBatch


async def read_topic(
    bootstrap: str, topic: str, partitions: int, *, timeout_s: float = 60.0
) -> list[Consumed]:
    """Every record now in ``topic`` (up to the end offsets read at the start), decoded."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        group_id=None,
        request_timeout_ms=int(timeout_s * 1000),
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        out: list[Consumed] = []
        while True:
            positions = {tp: await consumer.position(tp) for tp in tps}
            if all(positions[tp] >= end[tp] for tp in tps):
                break
            records = await consumer.getmany(*tps, timeout_ms=1000)
            for tp, batch in records.items():
                for rec in batch:
                    if rec.offset < end[tp]:
                        out.append(
                            Consumed(tp.partition, rec.offset, rec.key, decode_batch(rec.value))
                        )
        return out
    finally:
        await consumer.stop()


def codecs_on_disk(data_dir: Path, topic: str) -> set[str]:
    """The compression codec of every record batch of ``topic`` in the broker's log segments
    (record batch v2 header: attributes at byte 21, codec in its low 3 bits)."""
    found: set[str] = set()
    for segment in data_dir.glob(f"{topic}-*/*.log"):
        data = segment.read_bytes()
        pos = 0
        while pos + 23 <= len(data):
            (batch_length,) = struct.unpack_from(">i", data, pos + 8)
            if batch_length <= 0:
                break
            (attributes,) = struct.unpack_from(">h", data, pos + 21)
            found.add(CODECS[attributes & 0x7])
            pos += 12 + batch_length
    return found
