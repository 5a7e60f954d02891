"""Options of one rule engine instance (not part of the rules file: they describe the process).

Nest :class:`EngineOptions` in the service's pydantic-settings class (for example
``PWM_ALERTS__ENGINE__LEVELS='["pool_region","pool"]'``); the engine never reads the environment.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.rules import SCOPE_LEVELS, ScopeLevel


class EngineOptions(BaseModel):
    """Window sizes of the two aggregate streams and what this instance evaluates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_s: Annotated[int, Field(ge=1, le=3600, description="Pool x region window size")] = 10
    proxy_window_s: Annotated[int, Field(ge=1, le=3600, description="Per-proxy window size")] = 60
    levels: frozenset[ScopeLevel] = Field(
        default=frozenset(SCOPE_LEVELS),
        description=(
            "Scope levels evaluated here: a worker owning some pools takes proxy, pool_region and "
            "pool; region and fleet evaluate once (from ClickHouse in distributed mode)"
        ),
    )
    max_scopes_per_rule: Annotated[
        int,
        Field(
            ge=1,
            description="Scopes tracked per rule (alerts, baselines, absence); more are counted",
        ),
    ] = 200_000
    generator_url: str = Field(default="", description="generatorURL of every alert event")

    @model_validator(mode="after")
    def _some_level(self) -> EngineOptions:
        if not self.levels:
            raise ValueError("levels: evaluate at least one scope level")
        return self
