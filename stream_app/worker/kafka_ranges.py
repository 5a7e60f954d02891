"""Reading an exact offset range of a partition, outside the consumer group (flush rebuilds).

A short-lived aiokafka consumer without a group id: it assigns the partition, seeks to the first
offset and reads until the last one. Used only when a partition is taken over with a flush
intent (a crash while a flush was being written), so the same records can be aggregated again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped, unused-ignore]
from aiokafka.errors import (  # type: ignore[import-untyped, unused-ignore]
    KafkaError,
    OffsetOutOfRangeError,
)
from aiokafka.structs import TopicPartition  # type: ignore[import-untyped, unused-ignore]

from stream_app.worker.errors import BrokerUnavailable, RangeUnavailable, WorkerFatal
from stream_app.worker.partitions import OffsetRange, Partition

__all__ = ["RangeReader", "RangeRecord"]


@dataclass(frozen=True, slots=True)
class RangeRecord:
    partition: Partition
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None
    """The record's Kafka timestamp (None: the log has none)."""


def _timestamp_ms(message: Any) -> int | None:
    stamp = message.timestamp
    return stamp if isinstance(stamp, int) and stamp >= 0 else None


class RangeReader:
    """Reads ``first..last`` of partitions of one topic (see the module docstring)."""

    def __init__(
        self, bootstrap_servers: str, topic: str, *, client_id: str, timeout_s: float
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._topic = topic
        self._client_id = client_id
        self._timeout_s = timeout_s

    async def read(self, ranges: Iterable[OffsetRange]) -> list[RangeRecord]:
        """Records of every range, in offset order per partition.

        Raises :class:`BrokerUnavailable` when Kafka does not answer in time,
        :class:`RangeUnavailable` when a range is no longer in the log (retention deleted it)
        and :class:`WorkerFatal` when Kafka refuses the read.
        """
        wanted = {r.partition: (r.first, r.last) for r in ranges}
        if not wanted:
            return []
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="none",
        )
        out: list[RangeRecord] = []
        try:
            async with asyncio.timeout(self._timeout_s):
                await consumer.start()
            tps = {p: TopicPartition(self._topic, p) for p in wanted}
            consumer.assign(list(tps.values()))
            for p, (first, _) in wanted.items():
                consumer.seek(tps[p], first)
            remaining = set(wanted)
            deadline = time.monotonic() + self._timeout_s
            while remaining:
                if time.monotonic() > deadline:
                    raise BrokerUnavailable(
                        f"reading {self._topic} ranges {wanted}: not done in {self._timeout_s} s"
                    )
                batch = await consumer.getmany(*(tps[p] for p in remaining), timeout_ms=500)
                for tp, messages in batch.items():
                    first, last = wanted[tp.partition]
                    for m in messages:
                        if first <= m.offset <= last:
                            out.append(
                                RangeRecord(
                                    Partition(tp.partition),
                                    m.offset,
                                    m.key,
                                    m.value,
                                    _timestamp_ms(m),
                                )
                            )
                    if messages and messages[-1].offset >= last:
                        remaining.discard(tp.partition)
                        consumer.pause(tp)
        except OffsetOutOfRangeError as exc:
            raise RangeUnavailable(f"{self._topic} ranges {wanted} left the log: {exc!r}") from exc
        except KafkaError as exc:
            if exc.retriable:
                raise BrokerUnavailable(f"reading {self._topic}: {exc!r}") from exc
            raise WorkerFatal(f"cannot re-read {self._topic} ranges {wanted}: {exc!r}") from exc
        except (TimeoutError, OSError) as exc:
            raise BrokerUnavailable(f"reading {self._topic}: {exc!r}") from exc
        finally:
            await consumer.stop()
        out.sort(key=lambda r: (r.partition, r.offset))
        return out
