"""Settings of the stream pipeline, shared by the embedded runner and the Faust worker.

Each service has one pydantic-settings class, validated at start-up and passed in; nothing reads
the environment at import time. Environment variables use the ``PWM_`` prefix and ``__`` for
nesting (``PWM_PIPELINE__WINDOW_S=30``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PipelineSettings(BaseModel):
    """Windowing and flushing: the same for every runtime."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_s: Annotated[int, Field(ge=1, le=3600, description="Pool x region window size")] = 10
    grace_ms: Annotated[
        int, Field(ge=0, le=600_000, description="How late an event may arrive and still count")
    ] = 5_000
    proxy_window_s: Annotated[int, Field(ge=1, le=3600, description="Per-proxy window size")] = 60
    max_proxies_per_window: Annotated[int, Field(ge=1)] = 200_000
    idle_timeout_ms: Annotated[
        int,
        Field(ge=0, description="Wall time without newer events after which windows close anyway"),
    ] = 2_000
    flush_interval_ms: Annotated[
        int, Field(ge=50, le=60_000, description="How often partial sums are written")
    ] = 1_000
    max_clock_skew_ms: Annotated[
        int,
        Field(
            ge=0,
            description="How far an event may be ahead of its record's time (the Kafka "
            "timestamp, or the arrival over HTTP or in-process); further ones are dead-lettered "
            "as clock_skew and counted per host",
        ),
    ] = 60_000
    max_event_age_ms: Annotated[
        int,
        Field(
            ge=0,
            description="How far an event may be behind its record's time; older ones are "
            "dead-lettered as too_old (a producer's spool resends after an outage: keep this "
            "above the longest outage it rides out)",
        ),
    ] = 7 * 86_400_000
    max_pending_records: Annotated[
        int, Field(ge=1, description="Records accepted but not yet aggregated (backpressure bound)")
    ] = 2_000

    @model_validator(mode="after")
    def _proxy_windows_align(self) -> PipelineSettings:
        if self.proxy_window_s % self.window_s and self.window_s % self.proxy_window_s:
            raise ValueError(
                f"proxy_window_s ({self.proxy_window_s}) and window_s ({self.window_s}) must "
                "divide one another so per-proxy and pool windows align"
            )
        return self


def default_data_dir() -> Path:
    """Where the embedded default keeps its data (``./data`` beside the working directory)."""
    return Path.cwd() / "data"
