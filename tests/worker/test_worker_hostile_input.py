"""Hostile records on a real broker, sent by kcat (an independent client) between good events.

Every class of bad record the decoders know (the corpus in ``tests/schemas/hostile_records``,
plus NULL records, empty envelopes, events stamped after 2106 or a year ahead, envelopes
mixing good and skewed events, an envelope over the broker's size limit) goes to the requests
topic between rounds of good envelopes. The worker stays up; every bad record is on the
dead-letter topic with exactly the reason the decoder gives; every good event is counted in its
window; none is late; the skewed host is counted by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from worker_kit import (
    all_committed,
    differences,
    read_topic,
    stored,
    truth,
    unique_prefix,
    wait_until,
    worker_settings,
)

from schemas.errors import DecodeError
from schemas.events import Outcome
from schemas.wire import WireBatch, WireEvent, decode_record, encode_batch, encode_event
from stream_app.storage.client import get_client
from stream_app.storage.queries import StorageQueries
from stream_app.storage.settings import StorageSettings
from stream_app.worker.service import WorkerService

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CORPUS = Path(__file__).parents[1] / "schemas" / "hostile_records" / "refused"
PARTITIONS = 2
ROUNDS = 3
YEAR_MS = 365 * 86_400_000
PIPELINE = {
    "window_s": 2,
    "grace_ms": 5_000,
    "proxy_window_s": 10,
    "flush_interval_ms": 300,
    "idle_timeout_ms": 5_000,
}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def good_events(round_no: int, count: int, *, ts_ms: int, host: str = "host-1") -> list[WireEvent]:
    return [
        WireEvent(
            event_id=f"r{round_no}-{host}-{i}",
            ts_ms=ts_ms - (i % 200),
            pool=("alpha", "bravo")[i % 2],
            region=("eu", "us")[i % 3 % 2],
            outcome=Outcome.SUCCESS if i % 5 else Outcome.TIMEOUT,
            latency_ms=10.0 + i,
            source_host=host,
            proxy_id=f"{i % 7:016x}",
            status_code=200 if i % 5 else None,
            bytes_in=100 + i,
        )
        for i in range(count)
    ]


def envelope(events: list[WireEvent], pool: str, host: str) -> bytes:
    batch = WireBatch(
        batch_id=uuid.uuid4().hex,
        source_host=host,
        pool=pool,
        sent_ms=now_ms(),
        events=[e for e in events if e.pool == pool],
    )
    return encode_batch(batch)


def kcat_send(
    kcat: Path, bootstrap: str, topic: str, tmp: Path, values: list[bytes], *, key: str | None
) -> subprocess.CompletedProcess[bytes]:
    """One kcat run producing each value as one message (one file per message)."""
    files = []
    for value in values:
        path = tmp / f"{uuid.uuid4().hex}.msg"
        path.write_bytes(value)
        files.append(str(path))
    args = [str(kcat), "-b", bootstrap, "-t", topic, "-P", "-X", "message.max.bytes=2000000"]
    if key is not None:
        args += ["-k", key]
    return subprocess.run([*args, *files], capture_output=True, timeout=60, check=False)


def kcat_send_empty(kcat: Path, bootstrap: str, topic: str, *, null: bool) -> None:
    """An empty value (kcat sends no message for an empty file), or a NULL one."""
    flags = ["-Z"] if null else []
    done = subprocess.run(
        [str(kcat), "-b", bootstrap, "-t", topic, "-P", *flags, "-K", "|"],
        input=b"hostile|\n",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()


def expected_reason(value: bytes) -> str:
    try:
        decode_record(value)
    except DecodeError as exc:
        return str(exc)
    raise AssertionError(f"{value[:60]!r} decodes: not a hostile record")


async def test_hostile_records_between_good_events_leave_the_worker_up_and_totals_exact(
    kafka_bootstrap: str, worker_storage: StorageSettings, kcat: Path, tmp_path: Path
) -> None:
    prefix = unique_prefix("hostile")
    settings = worker_settings(kafka_bootstrap, prefix, partitions=PARTITIONS, pipeline=PIPELINE)
    topic = settings.requests_topic
    corpus = {p.name: p.read_bytes() for p in sorted(CORPUS.iterdir())}
    empty = {name for name, value in corpus.items() if not value}
    assert empty == {"empty.bin"}
    storage = worker_storage.model_copy(update={"raw_events": True})
    service = WorkerService(settings, storage)
    counted: list[WireEvent] = []
    dead_expected: Counter[str] = Counter()  # reason -> records (decode) or events (time)
    tried: Counter[str] = Counter()
    try:
        await service.start()
        worker = service.worker
        assert worker is not None
        await wait_until(
            lambda: _true(len(worker.partitions) == PARTITIONS), timeout_s=60, what="assignment"
        )
        send = asyncio.to_thread
        for round_no in range(ROUNDS):
            # Good envelopes of two hosts, stamped now.
            events = good_events(round_no, 300, ts_ms=now_ms())
            events += good_events(round_no, 100, ts_ms=now_ms(), host="host-2")
            for pool in ("alpha", "bravo"):
                for host in ("host-1", "host-2"):
                    mine = [e for e in events if e.source_host == host]
                    done = await send(
                        kcat_send, kcat, kafka_bootstrap, topic, tmp_path,
                        [envelope(mine, pool, host)], key=pool,
                    )  # fmt: skip
                    assert done.returncode == 0, done.stderr.decode()
            counted += events

            # Every refused record of the corpus, as one message each.
            done = await send(
                kcat_send, kcat, kafka_bootstrap, topic, tmp_path,
                [v for n, v in corpus.items() if n not in empty], key="hostile",
            )  # fmt: skip
            assert done.returncode == 0, done.stderr.decode()
            await send(kcat_send_empty, kcat, kafka_bootstrap, topic, null=False)
            for name, value in corpus.items():
                tried[name] += 1
                dead_expected[expected_reason(value)] += 1
            await send(kcat_send_empty, kcat, kafka_bootstrap, topic, null=True)
            tried["null-record"] += 1
            dead_expected["empty record: no value"] += 1

            # Valid events whose clock is wrong: a year ahead alone and inside an envelope of
            # good events (refused one by one), and one 20 s ahead (within bounds: counted).
            t = now_ms()
            year_ahead = good_events(round_no, 1, ts_ms=t + YEAR_MS, host="host-bad-clock")
            mixed_good = good_events(round_no + 100, 4, ts_ms=t, host="host-bad-clock")
            mixed = [*[e for e in mixed_good if e.pool == "alpha"], *year_ahead]
            slightly_ahead = good_events(round_no + 200, 1, ts_ms=t + 20_000, host="host-fast")
            done = await send(
                kcat_send, kcat, kafka_bootstrap, topic, tmp_path,
                [encode_event(year_ahead[0]), envelope(mixed, "alpha", "host-bad-clock"),
                 encode_event(slightly_ahead[0])],
                key="alpha",
            )  # fmt: skip
            assert done.returncode == 0, done.stderr.decode()
            tried["year-ahead"] += 2
            tried["slightly-ahead"] += 1
            counted += [e for e in mixed if e.ts_ms <= t] + slightly_ahead
            dead_expected["clock_skew"] += 2

        # An envelope over the broker's size limit never reaches the worker.
        big = envelope(good_events(99, 12_000, ts_ms=now_ms()), "alpha", "host-1")
        assert len(big) > 1_048_588
        done = await send(kcat_send, kcat, kafka_bootstrap, topic, tmp_path, [big], key="alpha")
        tried["over-size-limit"] += 1
        assert b"too large" in done.stderr.lower() or b"msg_size_too_large" in done.stderr.lower()

        await wait_until(
            lambda: all_committed(kafka_bootstrap, prefix, topic, PARTITIONS),
            timeout_s=120,
            what="every offset committed",
        )
        expected_dead = sum(dead_expected.values())
        dead: list[dict[str, object]] = []

        async def all_dead_letters() -> bool:
            dead[:] = [
                json.loads(m.value) for m in await read_topic(kafka_bootstrap, settings.dlq_topic)
            ]
            return len(dead) >= expected_dead

        with contextlib.suppress(AssertionError):  # a shortfall shows in the comparison below
            await wait_until(all_dead_letters, timeout_s=60, what="every dead letter")

        # The worker is up: the agent did not crash, the service did not stop.
        assert service.app is not None
        assert service.app.crash_reason is None
        assert service.exit_code == 0
        assert worker.partitions == list(range(PARTITIONS))

        # Every bad record is dead-lettered with the decoder's reason; nothing else is.
        reasons = Counter(
            "clock_skew" if str(d["reason"]).startswith("clock_skew") else str(d["reason"])
            for d in dead
        )
        assert reasons == dead_expected
        assert worker.stats.dead_letters_by_kind.get("late", 0) == 0
        assert worker.stats.late_events == 0
        assert worker.stats.consume_errors == 0
        assert worker.stats.clock_skew_by_host == {"host-bad-clock": 2 * ROUNDS}
        assert "host-fast" not in worker.stats.clock_skew_by_host

        # Every good event is counted in its window.
        queries = StorageQueries(get_client(worker_storage), worker_storage.database)
        start = min(e.ts_ms for e in counted) - 60_000
        end = max(e.ts_ms for e in counted) + 60_000
        got = await asyncio.to_thread(stored, queries, start, end)
        assert differences(truth(counted), got) == []
        assert worker.stats.events == len(counted) + 2 * ROUNDS  # decoded, skewed ones too

        # Raw events (PWM_STORAGE_RAW_EVENTS): every decoded event once, no hostile record.
        raw_rows, raw_ids = get_client(storage).rows(
            f"SELECT count(), uniqExact(event_id) FROM {storage.database}.requests_raw"
        )[0]
        assert raw_rows == worker.stats.events
        assert raw_ids == worker.stats.events - ROUNDS  # the year-ahead event is sent twice

        summary = {
            "records tried per class": dict(tried),
            "dead letters per kind": dict(worker.stats.dead_letters_by_kind),
            "good events stored": sum(v[0] for v in got.values()),
        }
        print(json.dumps(summary, indent=1, sort_keys=True))
    finally:
        await service.stop()


async def _true(value: bool) -> bool:
    return value
