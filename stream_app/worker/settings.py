"""Settings of the stream worker: one pydantic-settings class (environment + YAML file).

Environment variables use the ``PWM_WORKER_`` prefix and ``__`` for nesting
(``PWM_WORKER_BOOTSTRAP_SERVERS``, ``PWM_WORKER_PIPELINE__WINDOW_S=10``,
``PWM_WORKER_TOPICS__REQUESTS_PARTITIONS=12``). A YAML file (``--config FILE``) may hold the
same values under ``worker:`` and the storage settings under ``storage:``; the environment wins
over the file, the file over the defaults. Nothing is read at import time: build the settings
with :func:`load_worker_settings` at start-up and pass them in.
"""

from __future__ import annotations

import contextvars
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from stream_app.settings import PipelineSettings
from stream_app.storage.settings import StorageSettings

__all__ = [
    "DEFAULT_METRICS_PORT",
    "TopicSettings",
    "WorkerSettings",
    "WorkerStorageSettings",
    "load_worker_settings",
]

TOPIC_PREFIX_PATTERN = r"^[A-Za-z0-9._-]{1,200}$"
DEFAULT_METRICS_PORT = 9108
"""Where a worker serves ``/metrics`` and ``/health`` unless configured otherwise."""

_config_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "pwm_worker_config_file", default=None
)

Compression = Literal["none", "gzip", "lz4", "zstd", "snappy"]
_Hours = Annotated[int, Field(ge=1, le=24 * 3650)]


def _file_source(
    settings_cls: type[BaseSettings], section: str
) -> tuple[PydanticBaseSettingsSource, ...]:
    path = _config_file.get()
    if path is None:
        return ()
    return (YamlConfigSettingsSource(settings_cls, yaml_file=path, yaml_config_section=section),)


class TopicSettings(BaseModel):
    """Partitions and retention of the topics ``topics create`` (and the worker) create."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests_partitions: Annotated[
        int, Field(ge=1, le=10_000, description="Partitions of <prefix>.requests: max workers")
    ] = 12
    requests_retention_hours: _Hours = 168
    dlq_partitions: Annotated[int, Field(ge=1, le=10_000)] = 3
    dlq_retention_hours: _Hours = 24 * 14
    windows_partitions: Annotated[int, Field(ge=1, le=10_000)] = 6
    windows_retention_hours: _Hours = 72
    alerts_partitions: Annotated[int, Field(ge=1, le=10_000)] = 1
    alerts_retention_hours: _Hours = 24 * 30
    replication_factor: Annotated[int, Field(ge=1, le=10)] = 1
    min_insync_replicas: Annotated[int | None, Field(ge=1, le=10)] = None

    @model_validator(mode="after")
    def _isr_fits(self) -> TopicSettings:
        isr = self.min_insync_replicas
        if isr is not None and isr > self.replication_factor:
            raise ValueError(
                f"min_insync_replicas ({isr}) cannot exceed replication_factor "
                f"({self.replication_factor})"
            )
        return self


class WorkerSettings(BaseSettings):
    """``proxywhirl-metrics worker``: Kafka in, windows per pool x region and proxy, storage out."""

    model_config = SettingsConfigDict(
        env_prefix="PWM_WORKER_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    app_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,200}$")] = Field(
        default="proxywhirl-metrics-worker",
        description="Faust app id = Kafka consumer group of every worker of one deployment",
    )
    bootstrap_servers: str = Field(
        default="127.0.0.1:9092", min_length=1, description="Kafka brokers: host:port[,host:port]"
    )
    topic_prefix: Annotated[str, Field(pattern=TOPIC_PREFIX_PATTERN)] = Field(
        default="proxywhirl", description="Topics are <prefix>.requests, .requests.dlq, .windows"
    )
    client_id: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        default="proxywhirl-metrics-worker", description="Kafka client id (broker logs, quotas)"
    )
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    create_topics: bool = Field(
        default=True, description="Create missing topics at start-up (as `topics create` does)"
    )

    publish_windows: bool = Field(
        default=True, description="Publish closed pool x region windows on <prefix>.windows"
    )
    publish_proxy_windows: bool = Field(
        default=True, description="Also publish closed per-proxy windows on <prefix>.windows"
    )

    metrics_host: str = Field(default="127.0.0.1", description="Bind address of /metrics")
    metrics_port: Annotated[int, Field(ge=0, le=65_535)] = Field(
        default=DEFAULT_METRICS_PORT, description="Port of /metrics and /health (0: off)"
    )
    gc_threshold0: Annotated[int, Field(ge=0, le=10_000_000)] = Field(
        default=50_000,
        description="Generation-0 threshold of the worker process's garbage collector, set "
        "after freezing start-up objects (0: Python's default)",
    )
    restore_horizon_s: Annotated[int, Field(ge=0, le=7 * 86_400)] = Field(
        default=900,
        description="Open windows restored from storage when a partition has no saved watermark",
    )
    sink_backoff_initial_ms: Annotated[int, Field(ge=10, le=60_000)] = Field(
        default=200, description="First wait before a failed flush cycle is retried"
    )
    sink_backoff_max_ms: Annotated[int, Field(ge=10, le=600_000)] = Field(
        default=10_000, description="Longest wait between retries (doubling up to it)"
    )
    revoke_timeout_s: Annotated[float, Field(gt=0, le=600)] = Field(
        default=20.0,
        description="Time to store and commit what a worker holds before it gives partitions up",
    )
    stream_buffer_records: Annotated[int, Field(ge=1, le=100_000)] = Field(
        default=256, description="Records buffered per partition ahead of the agent"
    )
    fetch_max_partition_bytes: Annotated[int, Field(ge=65_536, le=64 * 1024 * 1024)] = Field(
        default=4 * 1024 * 1024, description="Most bytes fetched per partition per request"
    )
    catch_up_flush_interval_ms: Annotated[int, Field(ge=0, le=60_000)] = Field(
        default=5_000,
        description="Time between flush cycles while catching up (0: always flush_interval_ms): "
        "fewer, larger inserts while a backlog drains",
    )
    catch_up_behind_ms: Annotated[int, Field(ge=1_000, le=86_400_000)] = Field(
        default=30_000,
        description="Catching up: records are waiting and a partition's watermark is older "
        "than this",
    )
    fetch_max_wait_ms: Annotated[int, Field(ge=10, le=1_500)] = Field(
        default=100,
        description="Longest the broker holds a fetch for partitions without new records "
        "(partitions with records buffered wait behind it)",
    )
    broker_session_timeout_s: Annotated[float, Field(ge=6, le=300)] = Field(
        default=30.0, description="A worker silent this long leaves the group (crash detection)"
    )
    broker_heartbeat_interval_s: Annotated[float, Field(ge=0.5, le=60)] = Field(
        default=3.0, description="Group heartbeat interval (at most a third of the session)"
    )
    broker_request_timeout_s: Annotated[float, Field(ge=6, le=600)] = Field(
        default=40.0, description="Kafka request timeout (at least the session timeout)"
    )
    broker_rebalance_timeout_s: Annotated[float, Field(ge=6, le=600)] = Field(
        default=60.0, description="Time a rebalance waits for every member to rejoin"
    )
    broker_stall_ms: Annotated[int, Field(ge=500, le=600_000)] = Field(
        default=4_000,
        description="No fetch response for this long: input is taken as stalled and windows "
        "do not close by the idle rule (at most grace_ms + idle_timeout_ms)",
    )
    dedup_batches: Annotated[int, Field(ge=0, le=1_000_000)] = Field(
        default=20_000,
        description="Envelope ids remembered per partition to skip a producer's replays (0: off)",
    )
    producer_compression: Compression = Field(
        default="zstd", description="Codec of the dead-letter and windows records"
    )
    dlq_max_payload_bytes: Annotated[int, Field(ge=1_024, le=16 * 1024 * 1024)] = Field(
        default=256 * 1024, description="Original payload kept in a dead letter (cut beyond)"
    )
    health_stall_s: Annotated[float, Field(gt=0, le=3_600)] = Field(
        default=60.0, description="/health fails when no cycle completed for this long"
    )

    @model_validator(mode="after")
    def _consistent(self) -> WorkerSettings:
        if self.sink_backoff_max_ms < self.sink_backoff_initial_ms:
            raise ValueError("sink_backoff_max_ms must be >= sink_backoff_initial_ms")
        if self.broker_session_timeout_s > self.broker_request_timeout_s:
            raise ValueError("broker_session_timeout_s must not exceed broker_request_timeout_s")
        pipeline = self.pipeline
        if self.broker_stall_ms > pipeline.grace_ms + pipeline.idle_timeout_ms:
            raise ValueError(
                f"broker_stall_ms ({self.broker_stall_ms}) must not exceed pipeline.grace_ms + "
                f"pipeline.idle_timeout_ms ({pipeline.grace_ms + pipeline.idle_timeout_ms}): "
                "events delayed by a broker outage shorter than that could be judged late"
            )
        if self.broker_heartbeat_interval_s * 3 > self.broker_session_timeout_s:
            raise ValueError("broker_heartbeat_interval_s must be at most a third of the session")
        return self

    @property
    def requests_topic(self) -> str:
        return f"{self.topic_prefix}.requests"

    @property
    def dlq_topic(self) -> str:
        return f"{self.topic_prefix}.requests.dlq"

    @property
    def windows_topic(self) -> str:
        return f"{self.topic_prefix}.windows"

    @property
    def alerts_topic(self) -> str:
        return f"{self.topic_prefix}.alerts"

    @property
    def broker_urls(self) -> list[str]:
        """``kafka://host:port`` for each bootstrap server (Faust's broker list)."""
        return [f"kafka://{s.strip()}" for s in self.bootstrap_servers.split(",") if s.strip()]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, *_file_source(settings_cls, "worker"))


class WorkerStorageSettings(StorageSettings):
    """:class:`StorageSettings` (``PWM_STORAGE_*``) that also read the ``storage:`` file section."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, *_file_source(settings_cls, "storage"))


def load_worker_settings(
    config_file: Path | None = None,
    *,
    worker: dict[str, Any] | None = None,
    storage: dict[str, Any] | None = None,
) -> tuple[WorkerSettings, WorkerStorageSettings]:
    """Build and validate both settings: ``worker``/``storage`` overrides > env > file > defaults.

    Raises ``pydantic.ValidationError`` (naming the field) or ``FileNotFoundError``.
    """
    if config_file is not None and not config_file.is_file():
        raise FileNotFoundError(f"worker config file not found: {config_file}")
    token = _config_file.set(config_file)
    try:
        return WorkerSettings(**(worker or {})), WorkerStorageSettings(**(storage or {}))
    finally:
        _config_file.reset(token)
