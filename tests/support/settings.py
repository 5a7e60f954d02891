"""The configuration of the test harnesses, read from the environment when a fixture needs it.

``CI`` (``true`` in CI: a missing tool is a failure, never a skip), ``KAFKA_BOOTSTRAP_SERVERS``
(use that broker instead of starting one), ``XDG_CACHE_HOME`` (where the Kafka jars are cached);
everything else has the prefix ``PWM_TEST_`` (for example ``PWM_TEST_KAFKA_VERSION=3.9.1``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_KAFKA_VERSION = "4.4.0"


class HarnessSettings(BaseSettings):
    """Settings of the Kafka, Alertmanager and tool harnesses."""

    model_config = SettingsConfigDict(env_prefix="PWM_TEST_", extra="ignore")

    ci: bool = Field(default=False, validation_alias=AliasChoices("CI", "PWM_TEST_CI"))
    kafka_bootstrap_servers: str | None = Field(
        default=None, validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS")
    )
    xdg_cache_home: Path | None = Field(
        default=None, validation_alias=AliasChoices("XDG_CACHE_HOME")
    )

    kafka_version: str = Field(default=DEFAULT_KAFKA_VERSION, pattern=r"^\d+\.\d+\.\d+$")
    kafka_heap_mb: int = Field(default=512, ge=128, le=4096)
    kafka_start_timeout_s: float = Field(default=120.0, gt=0)
    kafka_stop_timeout_s: float = Field(default=30.0, gt=0)
    kafka_fetch_timeout_s: float = Field(default=600.0, gt=0)
    kafka_quick_jit: bool = True  # C1 only: fast start; set false for broker-bound benchmarks
    kafka_use_docker: bool = True
    kafka_container_image: str = "confluentinc/cp-kafka:8.0.0"
    java_bin: str = "java"

    alertmanager_bin: Path = Path("/usr/bin/prometheus-alertmanager")
    alertmanager_start_timeout_s: float = Field(default=30.0, gt=0)
    promtool_bin: Path = Path("/usr/bin/promtool")
    prometheus_bin: Path = Path("/usr/bin/prometheus")
    chromium_bin: Path = Path("/usr/bin/chromium")
    kcat_bin: Path = Path("/usr/bin/kcat")

    @field_validator("ci", mode="before")
    @classmethod
    def _blank_is_false(cls, value: object) -> object:
        """``CI=`` (set but empty) means not CI."""
        if isinstance(value, str) and not value.strip():
            return False
        return value

    @field_validator("kafka_bootstrap_servers", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @property
    def cache_root(self) -> Path:
        """``${XDG_CACHE_HOME:-~/.cache}/proxywhirl-metrics``, as scripts/kafka/fetch.sh uses."""
        base = self.xdg_cache_home or Path.home() / ".cache"
        return base / "proxywhirl-metrics"
