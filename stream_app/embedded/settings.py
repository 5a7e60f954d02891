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
    So has alerting (``PWM_ALERTING_*``: rules file, sinks); the demo's default rules file is
    the bundled ``rules.demo.yaml``.
    """

    model_config = SettingsConfigDict(
        env_prefix="PWM_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="History (embedded ClickHouse), dead letters; default ./data",
    )
    duration_s: Annotated[
        float | None, Field(gt=0, description="Stop after this many seconds (default: run on)")
    ] = None
    scenario: Path | None = Field(
        default=None, description="Fleet scenario YAML (default: the bundled demo fleet)"
    )
    seed: int = Field(default=7, description="Simulator seed: the same seed, the same fleet")
    rate_per_s: Annotated[float | None, Field(gt=0)] = Field(
        default=None, description="Override the scenario's total request rate"
    )
    source_host: str = Field(default="demo-host", description="Host label of the simulated fleet")
    fleet_key: SecretStr = Field(
        default=SecretStr("demo-fleet-key-change-me"),
        description="HMAC key for proxy ids (set your own outside the demo)",
    )
    print_summary: bool = Field(default=True, description="Print a table per closed window")
    alerts: bool = Field(
        default=True,
        description=(
            "Evaluate alert rules (PWM_ALERTING_* settings; rules file default: the bundled demo "
            "rules) and keep alert history"
        ),
    )
    print_alerts: bool = Field(default=True, description="Print a line per alert state change")
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
