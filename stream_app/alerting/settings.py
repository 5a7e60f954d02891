"""Settings of alert delivery and rule loading: one pydantic-settings class, validated at start-up.

Environment variables use the ``PWM_ALERTING_`` prefix (``PWM_ALERTING_RULES_FILE``,
``PWM_ALERTING_ALERTMANAGER_URLS='["http://am:9093"]'``, ``PWM_ALERTING_WEBHOOK_URL`` ...).
Nothing reads the environment at import time: build :class:`AlertingSettings` in the service's
start-up and pass it to :func:`stream_app.alerting.service.build_dispatcher`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream_app.alerting.backoff import RetryPolicy
from stream_app.settings import default_data_dir

TOPIC_PREFIX_PATTERN = r"^[A-Za-z0-9._-]{1,200}$"


class AlertingSettings(BaseSettings):
    """Where alert events go and where the rules come from."""

    model_config = SettingsConfigDict(env_prefix="PWM_ALERTING_", extra="ignore", frozen=True)

    rules_file: Path | None = Field(default=None, description="YAML rules file (hot reloaded)")
    rules_poll_interval_s: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0

    kafka_bootstrap_servers: str | None = Field(
        default=None, description="Publish on <topic_prefix>.alerts when set"
    )
    topic_prefix: Annotated[str, Field(pattern=TOPIC_PREFIX_PATTERN)] = "proxywhirl"

    alertmanager_urls: list[AnyHttpUrl] = Field(
        default_factory=list, description="Alertmanager base URLs (one sink per instance)"
    )
    alertmanager_resend_interval_s: Annotated[float, Field(gt=0.0, le=3600.0)] = 60.0

    webhook_url: SecretStr | None = Field(
        default=None, description="Generic webhook URL (may embed a token: never logged)"
    )
    webhook_format: Literal["json", "slack"] = "json"
    webhook_accepts: Literal["events", "notifications"] = Field(
        default="notifications",
        description="One request per grouped notification (default) or per alert state change",
    )

    history: bool = Field(default=True, description="Write alert events to ClickHouse")

    data_dir: Path = Field(default_factory=default_data_dir)
    dead_letter_file: Path | None = Field(
        default=None, description="JSONL dead letter (default <data_dir>/alerts-dead-letter.jsonl)"
    )

    queue_size: Annotated[int, Field(ge=1, le=1_000_000)] = 1000
    http_timeout_s: Annotated[float, Field(gt=0.0, le=120.0)] = 5.0
    retry_max_attempts: Annotated[int, Field(ge=1, le=100)] = 6
    retry_initial_backoff_s: Annotated[float, Field(ge=0.0, le=60.0)] = 0.5
    retry_max_backoff_s: Annotated[float, Field(ge=0.0, le=3600.0)] = 30.0

    fleet_evaluation_delay_ms: Annotated[
        int,
        Field(
            ge=0,
            le=600_000,
            description="Wall time after a window's end + grace before fleet rules read it",
        ),
    ] = 2_000
    generator_url: str = Field(default="", description="Link put into every alert event")

    @property
    def dead_letter_path(self) -> Path:
        return self.dead_letter_file or self.data_dir / "alerts-dead-letter.jsonl"

    def retry_policy(self) -> RetryPolicy:
        """The dispatcher's retry policy (RetryPolicy checks initial <= max)."""
        return RetryPolicy(
            max_attempts=self.retry_max_attempts,
            initial_backoff_s=self.retry_initial_backoff_s,
            max_backoff_s=max(self.retry_max_backoff_s, self.retry_initial_backoff_s),
        )
