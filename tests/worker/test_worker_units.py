"""The worker's small pieces, without a broker: commit metadata, the pool -> partition mapping,
repeated-envelope detection, dead-letter records and settings validation/loading."""

from __future__ import annotations

import base64
import importlib
import json
from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner  # type: ignore[import-untyped, unused-ignore]
from pydantic import ValidationError

from stream_app.core.watermark import WatermarkState
from stream_app.worker.ingest import RecentBatches
from stream_app.worker.partitions import (
    MAX_METADATA_BYTES,
    CommitMetadata,
    RangeIntent,
    partition_for_pool,
)
from stream_app.worker.records import dead_letter_record
from stream_app.worker.settings import load_worker_settings


def test_commit_metadata_round_trips_watermark_and_intent() -> None:
    intent = tuple(
        RangeIntent(p, 1_000 * p, 1_000 * p + 999, WatermarkState(1_700_000_000_000 + p, None))
        for p in range(40)
    )
    meta = CommitMetadata(WatermarkState(1_700_000_123_456, 1_700_000_125_000), intent)
    text = meta.encode()
    assert len(text) <= MAX_METADATA_BYTES
    assert CommitMetadata.decode(text) == meta
    plain = CommitMetadata(WatermarkState(None, None))
    assert CommitMetadata.decode(plain.encode()) == plain


@pytest.mark.parametrize("metadata", ["", "not json", '{"v": 2, "wm": 1}', '{"v": 1}', "[1,2]"])
def test_foreign_or_broken_commit_metadata_is_ignored(metadata: str) -> None:
    assert CommitMetadata.decode(metadata) is None


def test_pools_map_to_the_partition_kafkas_default_partitioner_chooses() -> None:
    partitioner = DefaultPartitioner()
    for count in (1, 3, 6, 12, 48):
        partitions = list(range(count))
        for pool in ("residential", "datacenter", "mobile", "isp", "p-17", "Ω"):
            expected = partitioner(pool.encode(), partitions, partitions)
            assert partition_for_pool(pool, count) == expected
    with pytest.raises(ValueError, match="partitions"):
        partition_for_pool("x", 0)


def test_recent_batches_remember_a_bounded_window() -> None:
    recent = RecentBatches(3)
    assert [recent.repeated(b) for b in ("a", "b", "a", "c", "d")] == [
        False,
        False,
        True,
        False,
        False,
    ]
    assert recent.repeated("a") is False  # pushed out by c and d: remembered again now
    assert recent.repeated("d") is True
    off = RecentBatches(0)
    assert [off.repeated("a"), off.repeated("a")] == [False, False]


def test_dead_letter_record_carries_reason_offset_and_a_bounded_payload() -> None:
    payload = b"x" * 5_000
    key, value, headers = dead_letter_record(
        source="p.requests",
        partition=4,
        offset=991,
        key=b"pool-a",
        payload=payload,
        reason="invalid record: Expected `float` - at `$.events[3].latency_ms`",
        now_ms=123,
        max_payload_bytes=1_024,
    )
    doc = json.loads(value)
    assert key == b"pool-a"
    assert (doc["source"], doc["partition"], doc["offset"]) == ("p.requests", 4, 991)
    assert doc["reason"].endswith("latency_ms`")
    assert base64.b64decode(doc["payload_b64"]) == payload[:1_024]
    assert doc["payload_truncated"] is True
    assert doc["payload_bytes"] == 5_000
    assert dict(headers)["pwm-source-offset"] == b"991"
    _, small, _ = dead_letter_record(
        source="s",
        partition=0,
        offset=0,
        key=None,
        payload=b"{",
        reason="r",
        now_ms=0,
        max_payload_bytes=1_024,
    )
    assert "payload_truncated" not in json.loads(small)


def test_settings_env_beats_file_beats_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "worker.yaml"
    config.write_text(
        "worker:\n"
        "  topic_prefix: from-file\n"
        "  app_id: file-group\n"
        "  pipeline: {window_s: 5, proxy_window_s: 60}\n"
        "storage:\n"
        "  database: file_db\n"
        "  dsn: http://u:p@clickhouse:8123\n"
    )
    monkeypatch.setenv("PWM_WORKER_APP_ID", "env-group")
    monkeypatch.setenv("PWM_STORAGE_DATABASE", "env_db")
    worker, storage = load_worker_settings(config, worker={"metrics_port": 0})
    assert worker.topic_prefix == "from-file"
    assert worker.app_id == "env-group"
    assert worker.pipeline.window_s == 5
    assert worker.metrics_port == 0
    assert worker.requests_topic == "from-file.requests"
    assert storage.database == "env_db"
    assert storage.dsn == "http://u:p@clickhouse:8123"
    with pytest.raises(FileNotFoundError):
        load_worker_settings(tmp_path / "missing.yaml")


def test_settings_refuse_a_stall_threshold_longer_than_grace_plus_idle() -> None:
    with pytest.raises(ValidationError, match="broker_stall_ms"):
        load_worker_settings(
            worker={
                "broker_stall_ms": 8_000,
                "pipeline": {"grace_ms": 1_000, "idle_timeout_ms": 2_000},
            }
        )
    with pytest.raises(ValidationError, match="window_s"):
        load_worker_settings(worker={"pipeline": {"window_s": 0}})
    with pytest.raises(ValidationError, match="min_insync_replicas"):
        load_worker_settings(worker={"topics": {"replication_factor": 1, "min_insync_replicas": 2}})


def test_every_error_tree_says_whether_it_is_retriable_and_no_name_is_shared() -> None:
    modules = [
        "schemas.errors",
        "producer.errors",
        "stream_app.storage.errors",
        "stream_app.worker.errors",
        "stream_app.alerting.errors",
        "stream_app.serve.errors",
        "stream_app.simulator.errors",
        "stream_app.core.rules.errors",
    ]
    seen: dict[str, str] = {}
    for name in modules:
        module = importlib.import_module(name)
        for cls in vars(module).values():
            if not (isinstance(cls, type) and issubclass(cls, Exception)):
                continue
            if cls.__module__ != name:
                continue
            assert isinstance(getattr(cls, "retriable", None), bool), cls
            assert cls.__name__ not in seen, f"{cls.__name__} in {name} and {seen[cls.__name__]}"
            seen[cls.__name__] = name
    assert seen.keys() >= RETRIABLE
    for name in RETRIABLE:
        module = importlib.import_module(seen[name])
        assert getattr(module, name).retriable is True
    assert "PublishRejected" not in seen  # never raised: not exported


RETRIABLE = {
    "TransportUnavailable",
    "SpoolError",
    "SinkUnavailable",
    "BrokerUnavailable",
    "PartitionsLost",
    "PublishUnavailable",
    "DeliveryUnavailable",
    "IngestBusy",
    "IngestUnavailable",
}
