"""Settings of a simulated fleet: one pydantic-settings class, validated when it is built.

Environment variables use the prefix ``PWM_SIMULATOR_`` (``PWM_SIMULATOR_SCENARIO``,
``PWM_SIMULATOR_SEED``, ...); they are read when the settings object is created, never at import.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream_app.simulator.generator import FleetSimulator
from stream_app.simulator.loader import load_scenario
from stream_app.simulator.scenario import Scenario

__all__ = ["SimulatorSettings"]


class SimulatorSettings(BaseSettings):
    """Which scenario to simulate, with which seed, how fast and for how long."""

    model_config = SettingsConfigDict(env_prefix="PWM_SIMULATOR_", extra="forbid", frozen=True)

    scenario: Path | None = Field(
        default=None, description="Scenario YAML (default: the bundled demo fleet)"
    )
    seed: Annotated[int, Field(ge=0, lt=1 << 63)] = 0
    rate_per_s: Annotated[float | None, Field(gt=0)] = Field(
        default=None, description="Scale the pools to this many requests/s in all"
    )
    duration_s: Annotated[float | None, Field(gt=0)] = Field(
        default=None, description="Real-time run length (default: the scenario's, or endless)"
    )
    tick_ms: Annotated[int, Field(ge=1, le=1_000)] = 50

    def load(self) -> Scenario:
        """The scenario, with the rate override applied (raises ``ScenarioError``)."""
        scenario = load_scenario(self.scenario)
        if self.rate_per_s is not None:
            scenario = scenario.with_total_rate(self.rate_per_s)
        return scenario

    def build(self, origin_ms: int | None = None) -> FleetSimulator:
        """A simulator whose time zero is ``origin_ms`` (default: now)."""
        origin = time.time_ns() // 1_000_000 if origin_ms is None else origin_ms
        return FleetSimulator(self.load(), self.seed, origin_ms=origin)

    def run_duration_s(self, scenario: Scenario) -> float | None:
        """How long a real-time run lasts: the override, else the scenario's own duration."""
        return self.duration_s if self.duration_s is not None else scenario.duration_s
