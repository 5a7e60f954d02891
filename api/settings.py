"""Settings of the API service: one pydantic-settings class, validated at start-up.

Environment variables use the ``PWM_API_`` prefix (``PWM_API_PORT``, ``PWM_API_WINDOW_S`` ...);
storage comes from :class:`stream_app.storage.settings.StorageSettings` (``PWM_STORAGE_*``).
Nothing reads the environment at import time: build :class:`ApiSettings` in the command's
start-up and pass it to :func:`api.app.create_app`. Tokens are ``SecretStr``: never printed,
logged or echoed (``PWM_API_TOKENS`` is JSON, see docs/api.md).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.auth import Role

__all__ = ["ApiSettings", "ApiToken"]


class ApiToken(BaseModel):
    """One named bearer token. The name is what logs and the audit show (``api:<name>``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="Shown in logs and the audit"
    )
    token: SecretStr = Field(min_length=16, max_length=512, description="The secret")
    roles: frozenset[Role] = Field(min_length=1, description="read, ingest, admin")


class ApiSettings(BaseSettings):
    """Where the API listens, who may call it (tokens) and how it reads the stored windows."""

    model_config = SettingsConfigDict(env_prefix="PWM_API_", extra="ignore", frozen=True)

    host: str = Field(default="127.0.0.1", min_length=1, description="Address to bind")
    port: Annotated[int, Field(ge=0, le=65_535, description="Port to bind (0: any free)")] = 8000
    window_s: Annotated[
        int, Field(ge=1, le=3600, description="Window size to expose; the workers' window_s")
    ] = 10
    grace_ms: Annotated[
        int, Field(ge=0, le=600_000, description="The workers' grace: a window settles after it")
    ] = 5_000
    settle_delay_ms: Annotated[
        int,
        Field(
            ge=0,
            le=600_000,
            description="Extra wait past window end + grace before a window counts as complete "
            "(covers the workers' flush interval and write)",
        ),
    ] = 2_000
    refresh_interval_s: Annotated[
        float, Field(gt=0, le=600, description="How often stored windows are read")
    ] = 5.0
    lookback_windows: Annotated[
        int,
        Field(
            ge=1,
            le=10_000,
            description="How many settled windows back a (pool, region) is looked for",
        ),
    ] = 6
    staleness_s: Annotated[
        float,
        Field(gt=0, description="A (pool, region) whose latest window is older disappears"),
    ] = 300.0

    cache_ttl_s: Annotated[
        float,
        Field(
            ge=0,
            le=60,
            description="Read answers (summary, series, proxies, pools) are shared for this long "
            "between clients asking the same; 0: every request reads storage",
        ),
    ] = 2.0

    export_max_rows_read: Annotated[
        int,
        Field(
            ge=0,
            description="GET /api/v1/export: exports estimated above this many rows (scopes x "
            "steps) need the admin role",
        ),
    ] = 5_000_000
    export_chunk_rows: Annotated[
        int,
        Field(ge=1_000, le=10_000_000, description="Rows an export reads per query (memory)"),
    ] = 50_000
    sql_max_execution_time_s: Annotated[
        int, Field(ge=1, le=3_600, description="POST /api/v1/sql: max_execution_time")
    ] = 30
    sql_max_result_rows: Annotated[
        int, Field(ge=1, description="POST /api/v1/sql: max_result_rows (an error beyond)")
    ] = 1_000_000
    sql_max_result_bytes: Annotated[
        int, Field(ge=1, description="POST /api/v1/sql: max_result_bytes (an error beyond)")
    ] = 256 << 20

    tokens: list[ApiToken] = Field(
        default_factory=list,
        description="Named bearer tokens, JSON: "
        '[{"name": "grafana", "token": "...", "roles": ["read"]}]; admin implies read and ingest',
    )
    read_open: bool | None = Field(
        default=None,
        description="Reads without a token; unset: only when bound to a loopback address",
    )

    @model_validator(mode="after")
    def _unique_tokens(self) -> ApiSettings:
        names = [t.name for t in self.tokens]
        if len(set(names)) != len(names):
            raise ValueError("token names must be unique")
        secrets = [t.token.get_secret_value() for t in self.tokens]
        if len(set(secrets)) != len(secrets):
            raise ValueError("two tokens share a secret")
        return self

    @model_validator(mode="after")
    def _stale_after_lookback(self) -> ApiSettings:
        if self.staleness_s < self.window_s:
            raise ValueError(
                f"staleness_s ({self.staleness_s}) must be at least window_s ({self.window_s})"
            )
        return self

    @property
    def settle_ms(self) -> int:
        """How long after its end a window is read as complete."""
        return self.grace_ms + self.settle_delay_ms
