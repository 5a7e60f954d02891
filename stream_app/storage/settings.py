"""Settings of the storage component: one pydantic-settings class, validated at start-up.

Environment variables use the ``PWM_STORAGE_`` prefix (``PWM_STORAGE_DSN``,
``PWM_STORAGE_TTL_10S_DAYS`` ...). Nothing reads the environment at import time: build a
:class:`StorageSettings` in the service's start-up and pass it in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream_app.settings import default_data_dir

IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
"""Database names: safe to quote as a ClickHouse identifier."""

_KEEPER_PATH_PATTERN = r"^[A-Za-z0-9_{}/.-]+$"
"""Keeper paths and replica names: macros in braces, no quotes (they end up in SQL literals)."""

_Days = Annotated[int, Field(ge=1, le=36_500)]


class StorageSettings(BaseSettings):
    """Where and how aggregates are stored (ClickHouse: embedded chDB or a server)."""

    model_config = SettingsConfigDict(env_prefix="PWM_STORAGE_", extra="ignore")

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Base directory of the embedded engine (used when dsn is not set)",
    )
    dsn: str = Field(
        default="",
        description=(
            "chdb:///abs/path for the embedded engine, http(s)://user:password@host:port for a "
            "server; empty means chdb:///<data_dir>/clickhouse"
        ),
    )
    database: Annotated[str, Field(pattern=IDENTIFIER_PATTERN)] = "proxywhirl"
    ttl_10s_days: _Days = 14
    ttl_1m_days: _Days = 90
    ttl_1h_days: _Days = 400
    ttl_1d_days: _Days = 1_826
    ttl_proxy_1m_days: _Days = 90
    ttl_proxy_1d_days: _Days = 400
    ttl_raw_hours: Annotated[int, Field(ge=1, le=24 * 365)] = 48
    raw_events: bool = Field(default=False, description="Also store raw events (requests_raw)")
    dedup_window_blocks: Annotated[
        int,
        Field(
            ge=100,
            le=1_000_000,
            description="Inserted blocks remembered per table for deduplicating re-deliveries",
        ),
    ] = 10_000
    cluster: Annotated[str, Field(pattern=r"^$|" + IDENTIFIER_PATTERN)] = Field(
        default="",
        description=(
            "ClickHouse cluster (remote_servers) of a sharded/replicated deployment; empty for "
            "one server or the embedded engine. Set, migrations run ON CLUSTER with Replicated "
            "engines and put Distributed tables in front (docs/storage.md)"
        ),
    )
    replica_path: Annotated[str, Field(pattern=_KEEPER_PATH_PATTERN)] = Field(
        default="/clickhouse/tables/{shard}/{database}/{table}",
        description="Cluster mode: Keeper path of each replicated table (server macros allowed)",
    )
    replica_name: Annotated[str, Field(pattern=_KEEPER_PATH_PATTERN)] = Field(
        default="{replica}",
        description="Cluster mode: replica name of each replicated table (server macros allowed)",
    )
    replicated_dedup_window_s: Annotated[
        int,
        Field(
            ge=60,
            le=30 * 86_400,
            description=(
                "Cluster mode: seconds Keeper remembers inserted blocks; cover the longest "
                "re-delivery (the Kafka retention of the requests topic)"
            ),
        ),
    ] = 7 * 86_400
    insert_timeout_s: Annotated[float, Field(gt=0, le=3_600)] = 30.0
    insert_retries: Annotated[int, Field(ge=0, le=100)] = 5
    retry_backoff_s: Annotated[float, Field(gt=0, le=60)] = 0.2
    retry_backoff_max_s: Annotated[float, Field(gt=0, le=600)] = 5.0

    @model_validator(mode="after")
    def _resolve_dsn(self) -> StorageSettings:
        if not self.dsn:
            self.dsn = f"chdb://{(self.data_dir / 'clickhouse').resolve()}"
        scheme = urlsplit(self.dsn).scheme
        if scheme not in ("chdb", "http", "https"):
            raise ValueError(f"dsn scheme must be chdb, http or https, got {scheme!r}")
        if self.cluster and scheme == "chdb":
            raise ValueError("cluster needs a ClickHouse server dsn (http or https), not chdb")
        path = self.replica_path
        per_table = "{table}" in path or "{uuid}" in path
        if self.cluster and ("{shard}" not in path or not per_table):
            raise ValueError(
                "replica_path must hold {shard} (one replica set per shard) and {table} or "
                "{uuid} (one path per table)"
            )
        if self.retry_backoff_max_s < self.retry_backoff_s:
            raise ValueError("retry_backoff_max_s must not be smaller than retry_backoff_s")
        return self

    @property
    def embedded(self) -> bool:
        """True for the embedded engine (chDB)."""
        return self.dsn.startswith("chdb:")

    def redacted_dsn(self) -> str:
        """The DSN without its password, for logs."""
        return redact_dsn(self.dsn)


def redact_dsn(dsn: str) -> str:
    """``http://user:***@host:8123`` for ``http://user:secret@host:8123``."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.rpartition("@")
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))
