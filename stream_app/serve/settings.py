"""Settings of the HTTP ingest: one pydantic-settings class, validated at start-up.

Environment variables use the ``PWM_INGEST_`` prefix (``PWM_INGEST_MAX_BODY_BYTES`` ...).
Where the process listens and its tokens (the ``ingest`` role) are the API's settings
(:class:`api.settings.ApiSettings`); the pipeline's are :class:`stream_app.settings.
PipelineSettings`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["IngestSettings"]

_MIB = 1024 * 1024


class IngestSettings(BaseSettings):
    """Limits and durability of ``POST /api/v1/ingest``."""

    model_config = SettingsConfigDict(env_prefix="PWM_INGEST_", extra="ignore", frozen=True)

    max_body_bytes: Annotated[
        int, Field(ge=1024, le=1024 * _MIB, description="Largest request body as sent (413)")
    ] = 8 * _MIB
    max_decoded_bytes: Annotated[
        int,
        Field(ge=1024, le=4096 * _MIB, description="Largest body after decompression (413)"),
    ] = 64 * _MIB
    retry_after_s: Annotated[
        int, Field(ge=1, le=3600, description="Retry-After of 429 and 503 answers")
    ] = 1
    dedup_ttl_s: Annotated[
        float,
        Field(
            ge=60,
            description="How long a batch id is remembered to answer its retries as duplicates",
        ),
    ] = 7 * 24 * 3600.0
    inbox_synchronous: Literal["NORMAL", "FULL"] = Field(
        default="NORMAL",
        description="Inbox durability: NORMAL survives a process crash, FULL also power loss",
    )

    forward_bootstrap_servers: str | None = Field(
        default=None,
        min_length=1,
        description="Distributed mode: the Kafka cluster a stateless API forwards ingested "
        "records to (unset: no ingest route there)",
    )
    forward_topic_prefix: str = Field(
        default="proxywhirl",
        pattern=r"^[A-Za-z0-9._-]{1,200}$",
        description="Distributed mode: records go to <prefix>.requests",
    )

    @model_validator(mode="after")
    def _decoded_covers_body(self) -> IngestSettings:
        if self.max_decoded_bytes < self.max_body_bytes:
            raise ValueError("max_decoded_bytes must be at least max_body_bytes")
        return self
