"""Configuration of the window aggregator (plain pydantic, no environment reads).

A service's settings class holds these values (``stream_app.settings.PipelineSettings``) and
hands them over with :meth:`AggregatorConfig.from_settings`, which reads the fields by attribute
name and validates them again, so a misconfigured worker fails at start-up.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["AggregatorConfig"]


class AggregatorConfig(BaseModel):
    """Window sizes, lateness and memory bounds of one :class:`WindowAggregator`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window_s: Annotated[int, Field(ge=1, description="Pool x region window size")] = 10
    grace_ms: Annotated[
        int, Field(ge=0, description="How far out of order an event may arrive and still count")
    ] = 5_000
    proxy_window_s: Annotated[
        int, Field(ge=1, description="Per-proxy window size: a whole number of pool windows")
    ] = 60
    max_proxies_per_window: Annotated[
        int,
        Field(ge=1, description="Per-proxy entries kept per proxy window; past it, counted only"),
    ] = 200_000
    idle_timeout_ms: Annotated[
        int,
        Field(ge=0, description="Wall time without newer events before the watermark follows it"),
    ] = 10_000
    max_late_events: Annotated[
        int, Field(ge=0, description="Late events kept for the side output until drained")
    ] = 10_000
    max_future_skew_ms: Annotated[
        int | None,
        Field(
            ge=0,
            description="Event times further ahead of the wall clock do not move the "
            "watermark (None: no limit)",
        ),
    ] = 300_000

    max_clock_skew_ms: Annotated[
        int | None,
        Field(
            ge=0,
            description="Events further ahead of their record's time (Kafka timestamp or "
            "arrival) are refused as clock_skew (None: no limit)",
        ),
    ] = None
    max_event_age_ms: Annotated[
        int | None,
        Field(
            ge=0,
            description="Events further behind their record's time are refused as too_old "
            "(None: no limit)",
        ),
    ] = None

    @model_validator(mode="after")
    def _proxy_windows_cover_pool_windows(self) -> AggregatorConfig:
        if self.proxy_window_s % self.window_s:
            raise ValueError(
                f"proxy_window_s ({self.proxy_window_s}) must be a multiple of window_s "
                f"({self.window_s}) so that every pool window lies in one proxy window"
            )
        return self

    @classmethod
    def from_settings(cls, settings: Any) -> AggregatorConfig:
        """Take the fields this config has from any settings object that has them as attributes.

        Fields the settings object lacks keep their defaults.
        """
        values = {
            name: getattr(settings, name) for name in cls.model_fields if hasattr(settings, name)
        }
        return cls.model_validate(values)
