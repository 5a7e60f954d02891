"""Configuration of the ProxyWhirl integration: one pydantic-settings class.

Environment variables use the prefix ``PWM_PROXYWHIRL_`` (``PWM_PROXYWHIRL_POOL``,
``PWM_PROXYWHIRL_INCLUDE_DOMAIN``, ...); they are read when the settings object is created
(inside ``instrument()`` unless you build it yourself), never at import time. Explicit keyword
arguments win over the environment. ``pool`` and ``region`` go through the producer's privacy
checks: an IP address, host:port, URL, credentials or path raises a ``ValueError``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from producer.privacy import check_label

__all__ = ["ProxyWhirlSettings"]


class ProxyWhirlSettings(BaseSettings):
    """How requests of an instrumented rotator become events; immutable once built."""

    model_config = SettingsConfigDict(env_prefix="PWM_PROXYWHIRL_", frozen=True, extra="forbid")

    pool: str = Field(
        default="default",
        description="Pool of every proxy that carries no '<pool_tag_prefix><name>' tag "
        "(ProxyWhirl's own pool is always named 'default')",
    )
    region: str = Field(
        default="unknown",
        description="Region of a proxy with no region tag, no region and no country_code",
    )
    include_domain: bool = Field(
        default=False,
        description="Send the target's domain (never its path or query); IP-literal targets "
        "are never sent",
    )
    pool_tag_prefix: Annotated[str, Field(min_length=1, max_length=32)] = "pool:"
    region_tag_prefix: Annotated[str, Field(min_length=1, max_length=32)] = "region:"
    label_cache_size: Annotated[int, Field(ge=16)] = 65_536
    error_log_interval_s: Annotated[float, Field(ge=0)] = 60.0

    @field_validator("pool", "region")
    @classmethod
    def _label_is_safe(cls, value: str, info: ValidationInfo) -> str:
        return check_label(info.field_name or "label", value)
