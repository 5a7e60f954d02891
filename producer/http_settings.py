"""HTTP transport configuration: one pydantic-settings class, validated when it is built.

Environment variables use the prefix ``PWM_PRODUCER_HTTP_`` (``..._URL``, ``..._TOKEN``,
``..._SPOOL_PATH``, ...), read when the object is created.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["HttpCompression", "HttpTransportSettings"]

HttpCompression = Literal["none", "gzip", "zstd"]

INGEST_PATH = "/api/v1/ingest"


class HttpTransportSettings(BaseSettings):
    """Where and how the HTTP transport posts envelopes, and how it spools during outages."""

    model_config = SettingsConfigDict(
        env_prefix="PWM_PRODUCER_HTTP_", frozen=True, extra="forbid", hide_input_in_errors=True
    )

    url: str = Field(
        default="http://127.0.0.1:8000",
        pattern=r"^https?://[^\s]+$",
        description="The serve process (http(s)://host:port); /api/v1/ingest is appended",
    )
    token: SecretStr | None = Field(default=None, description="Bearer token with the ingest role")
    compression: HttpCompression = Field(
        default="zstd", description="Content-Encoding of envelopes larger than compress_min_bytes"
    )
    compress_min_bytes: Annotated[int, Field(ge=0, description="Smaller envelopes go plain")] = 1024
    timeout_s: Annotated[float, Field(gt=0, le=600, description="Per request")] = 10.0
    max_connections: Annotated[
        int, Field(ge=1, le=256, description="Keep-alive connections (requests at once)")
    ] = 8
    max_in_flight_bytes: Annotated[
        int, Field(ge=1024, description="Envelope bytes awaiting an answer; beyond, spooled")
    ] = 32 * 1024 * 1024
    spool_path: Path | None = Field(
        default=None,
        description="SQLite file for envelopes the server could not take; None keeps them in "
        "memory only (lost on restart)",
    )
    spool_max_bytes: Annotated[int, Field(ge=1024)] = 256 * 1024 * 1024
    spool_max_rows: Annotated[int, Field(ge=1)] = 100_000
    spool_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    replay_batch_envelopes: Annotated[int, Field(ge=1, le=10_000)] = 32
    retry_initial_ms: Annotated[
        int, Field(ge=1, description="First back-off after a failure (jittered, doubling)")
    ] = 100
    retry_max_ms: Annotated[int, Field(ge=1, description="Longest back-off")] = 10_000
    close_timeout_s: Annotated[float, Field(gt=0)] = 10.0

    @property
    def ingest_url(self) -> str:
        base = self.url.rstrip("/")
        return base if base.endswith(INGEST_PATH) else f"{base}{INGEST_PATH}"

    @model_validator(mode="after")
    def _consistent(self) -> HttpTransportSettings:
        if self.retry_max_ms < self.retry_initial_ms:
            raise ValueError("retry_max_ms must be >= retry_initial_ms")
        return self
