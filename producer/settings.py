"""Producer configuration: one pydantic-settings class, validated when it is built.

Environment variables use the prefix ``PWM_PRODUCER_`` (``PWM_PRODUCER_SOURCE_HOST``,
``PWM_PRODUCER_FLEET_KEY``, ...); they are read when the settings object is created, never at
import time. ``source_host`` goes through the same privacy checks as ``emit()`` arguments: an
IP address, host:port, URL, credentials or path raises a ``ValueError`` naming the field.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from producer.envelope import EnvelopeSchema
from producer.privacy import check_label
from schemas.events import MAX_EVENTS_PER_BATCH

__all__ = ["ProducerSettings"]


class ProducerSettings(BaseSettings):
    """Everything a :class:`producer.MetricsProducer` needs; immutable once built."""

    model_config = SettingsConfigDict(
        env_prefix="PWM_PRODUCER_", frozen=True, extra="forbid", hide_input_in_errors=True
    )

    source_host: str = Field(description="This fleet host's name (a label, never an address)")
    fleet_key: SecretStr = Field(
        min_length=8,
        description="Secret shared by the fleet; proxy ids are HMAC-SHA256 under it. Use 32+ "
        "random bytes.",
    )
    max_buffer_events: Annotated[int, Field(ge=1)] = 100_000
    batch_max_events: Annotated[int, Field(ge=1, le=MAX_EVENTS_PER_BATCH)] = 500
    batch_max_age_ms: Annotated[int, Field(ge=1, le=3_600_000)] = 200
    include_target_domain: bool = Field(
        default=True, description="False: target_domain is dropped from every event"
    )
    strict: bool = Field(
        default=False,
        description="Development aid: emit() raises PrivacyViolation/InvalidEvent instead of "
        "counting a rejection and returning False",
    )
    envelope_schema: EnvelopeSchema = Field(
        default="v1",
        description="Wire schema of the envelopes sent: v1 (one object per event) or v2 "
        "(columnar: one array per field, labels dictionary-encoded; workers count it about 1.7x "
        "faster). v2 needs workers and serve of this release or later (older ones refuse it): "
        "upgrade the consumers first",
    )
    close_at_exit: bool = Field(default=True, description="Register close() with atexit")
    close_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    retry_initial_ms: Annotated[int, Field(ge=1)] = 50
    retry_max_ms: Annotated[int, Field(ge=1)] = 5_000
    validation_cache_size: Annotated[int, Field(ge=16)] = 65_536
    proxy_id_cache_size: Annotated[int, Field(ge=16)] = 65_536
    rejection_log_interval_s: Annotated[float, Field(ge=0)] = 60.0

    @field_validator("source_host")
    @classmethod
    def _source_host_is_safe(cls, value: str) -> str:
        return check_label("source_host", value)

    @model_validator(mode="after")
    def _retry_bounds(self) -> ProducerSettings:
        if self.retry_max_ms < self.retry_initial_ms:
            raise ValueError("retry_max_ms must be >= retry_initial_ms")
        return self
