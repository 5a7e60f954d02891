"""Kafka transport configuration: one pydantic-settings class, validated when it is built.

Environment variables use the prefix ``PWM_PRODUCER_KAFKA_`` (``..._BOOTSTRAP_SERVERS``,
``..._TOPIC_PREFIX``, ``..._SPOOL_PATH``, ...), read when the object is created. The default
codec, zstd, was chosen by measurement (see :mod:`producer.kafka`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Compression", "KafkaTransportSettings"]

Compression = Literal["none", "gzip", "lz4", "zstd", "snappy"]


class KafkaTransportSettings(BaseSettings):
    """Where and how the Kafka transport ships envelopes, and how it spools during outages."""

    model_config = SettingsConfigDict(
        env_prefix="PWM_PRODUCER_KAFKA_", frozen=True, extra="forbid", hide_input_in_errors=True
    )

    bootstrap_servers: str = Field(default="127.0.0.1:9092", min_length=1)
    topic_prefix: str = Field(default="proxywhirl", pattern=r"^[A-Za-z0-9._-]{1,200}$")
    client_id: str = Field(default="proxywhirl-metrics-producer", min_length=1, max_length=200)
    compression: Compression = "zstd"
    linger_ms: Annotated[int, Field(ge=0, le=60_000)] = 5
    request_timeout_ms: Annotated[int, Field(ge=100)] = 10_000
    retry_backoff_ms: Annotated[int, Field(ge=1)] = 100
    max_request_bytes: Annotated[int, Field(ge=1024)] = 4 * 1024 * 1024
    max_batch_bytes: Annotated[int, Field(ge=1024)] = 1024 * 1024
    max_in_flight_bytes: Annotated[int, Field(ge=1024)] = 32 * 1024 * 1024
    spool_path: Path | None = Field(
        default=None,
        description="SQLite file for envelopes the broker could not take; None keeps them in "
        "memory only (lost on restart)",
    )
    spool_max_bytes: Annotated[int, Field(ge=1024)] = 256 * 1024 * 1024
    spool_max_rows: Annotated[int, Field(ge=1)] = 100_000
    spool_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    replay_batch_envelopes: Annotated[int, Field(ge=1, le=10_000)] = 64
    reconnect_initial_ms: Annotated[int, Field(ge=1)] = 200
    reconnect_max_ms: Annotated[int, Field(ge=1)] = 10_000
    close_timeout_s: Annotated[float, Field(gt=0)] = 10.0

    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI"] = (
        "PLAIN"
    )
    sasl_plain_username: str | None = None
    sasl_plain_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_password: SecretStr | None = None
    ssl_check_hostname: bool = True

    @property
    def topic(self) -> str:
        """The requests topic: ``<prefix>.requests``."""
        return f"{self.topic_prefix}.requests"

    @model_validator(mode="after")
    def _consistent(self) -> KafkaTransportSettings:
        if self.reconnect_max_ms < self.reconnect_initial_ms:
            raise ValueError("reconnect_max_ms must be >= reconnect_initial_ms")
        if self.max_batch_bytes > self.max_request_bytes:
            raise ValueError("max_batch_bytes must be <= max_request_bytes")
        password_auth = self.sasl_mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
        missing = not self.sasl_plain_username or self.sasl_plain_password is None
        if self.security_protocol.startswith("SASL") and password_auth and missing:
            raise ValueError(
                f"{self.sasl_mechanism} needs sasl_plain_username and sasl_plain_password"
            )
        return self
