"""Settings of the embedded service (``demo``): one class, validated at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream_app.settings import PipelineSettings, default_data_dir


class EmbeddedSettings(BaseSettings):
    """``proxywhirl-metrics demo``: simulated fleet, in-process pipeline, embedded ClickHouse.

    Environment: ``PWM_DATA_DIR``, ``PWM_DURATION_S``, ``PWM_PIPELINE__WINDOW_S`` ...
    Storage has its own settings (``PWM_STORAGE_*``); its DSN defaults to chDB under ``data_dir``.
    """

    model_config = SettingsConfigDict(
        env_prefix="PWM_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    duration_s: Annotated[float | None, Field(gt=0)] = None
    scenario: Path | None = Field(
        default=None, description="Fleet scenario YAML (default: the bundled demo fleet)"
    )
    seed: int = 7
    rate_per_s: Annotated[float | None, Field(gt=0)] = Field(
        default=None, description="Override the scenario's total request rate"
    )
    source_host: str = "demo-host"
    fleet_key: SecretStr = SecretStr("demo-fleet-key-change-me")
    print_summary: bool = True
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
