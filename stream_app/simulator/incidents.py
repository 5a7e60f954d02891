"""Scripted incidents: what goes wrong, where, and when (pydantic models of a scenario file).

Every incident starts ``at_s`` seconds after the scenario origin and lasts ``duration_s`` seconds:
it is active for event times in ``[origin + at_s, origin + at_s + duration_s)`` (whole
milliseconds). Its scope is a pool, a region, or a pool in one region. Incidents may overlap:
traffic and latency factors multiply, silence wins over everything, the highest error rate among
overlapping error spikes (and flaps in their error phase) applies to the scope, and a failing
proxy uses its incident's error rate whatever else is going on.

Kinds (``kind:`` in YAML):

``error_spike``
    ``pool`` [, ``region``]: the error rate becomes ``error_rate``, with the ``outcomes`` mix.
``latency_multiplier``
    ``pool`` and/or ``region``: every latency is multiplied by ``factor``.
``silence``
    ``pool`` [, ``region``]: no events at all.
``flap``
    ``pool`` [, ``region``]: down for ``period_s``, up for ``period_s``, and so on (starting
    down); down means silent (``effect: silence``) or failing (``effect: errors``).
``proxy_failure``
    ``pool`` [, ``region``]: one proxy (``proxy_index``, needs ``region``) or a ``fraction`` of the
    scope's proxies fail with ``error_rate`` and the ``outcomes`` mix.
``traffic_multiplier``
    optional ``pool`` and/or ``region`` (neither: the whole fleet): request rate times ``factor``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from schemas.events import LABEL_PATTERN, Outcome

__all__ = [
    "ErrorSpike",
    "Flap",
    "Incident",
    "LatencyMultiplier",
    "OutcomeMix",
    "ProxyFailure",
    "Silence",
    "TrafficMultiplier",
]

_Label = Annotated[str, Field(pattern=LABEL_PATTERN)]
_Rate = Annotated[float, Field(ge=0.0, le=1.0)]
_Factor = Annotated[float, Field(ge=0.0, le=1_000.0)]


def _check_mix(mix: dict[Outcome, float]) -> dict[Outcome, float]:
    if Outcome.SUCCESS in mix:
        raise ValueError("an error mix cannot contain 'success'")
    if not any(weight > 0 for weight in mix.values()):
        raise ValueError("needs at least one outcome with a positive weight")
    return mix


OutcomeMix = Annotated[dict[Outcome, Annotated[float, Field(ge=0.0)]], AfterValidator(_check_mix)]
"""Relative weights of error outcomes (``{timeout: 3, http_error: 1}``)."""

_FAILURE_MIX: dict[Outcome, float] = {Outcome.CONNECTION_ERROR: 0.6, Outcome.TIMEOUT: 0.4}


class _Incident(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at_s: Annotated[float, Field(ge=0.0, description="Start, seconds after the scenario origin")]
    duration_s: Annotated[float, Field(gt=0.0, description="How long it lasts, seconds")]
    pool: _Label | None = None
    region: _Label | None = None
    note: str = Field(default="", max_length=500, description="Free text for the operator")

    def start_ms(self, origin_ms: int) -> int:
        """First event time (epoch ms) inside the incident."""
        return origin_ms + round(self.at_s * 1000)

    def end_ms(self, origin_ms: int) -> int:
        """First event time (epoch ms) after the incident."""
        return origin_ms + round((self.at_s + self.duration_s) * 1000)

    def covers(self, pool: str, region: str) -> bool:
        """Whether the incident's scope includes ``pool`` in ``region``."""
        return (self.pool is None or self.pool == pool) and (
            self.region is None or self.region == region
        )


class _PoolScoped(_Incident):
    pool: _Label


class ErrorSpike(_PoolScoped):
    """The scope's error rate becomes ``error_rate``."""

    kind: Literal["error_spike"]
    error_rate: _Rate
    outcomes: OutcomeMix | None = Field(
        default=None, description="Relative weights of error outcomes (default: the pool's mix)"
    )


class LatencyMultiplier(_Incident):
    """Every latency in the scope is multiplied by ``factor``."""

    kind: Literal["latency_multiplier"]
    factor: Annotated[float, Field(gt=0.0, le=1_000.0)]

    @model_validator(mode="after")
    def _has_scope(self) -> LatencyMultiplier:
        if self.pool is None and self.region is None:
            raise ValueError("latency_multiplier needs a pool or a region")
        return self


class Silence(_PoolScoped):
    """The scope emits nothing."""

    kind: Literal["silence"]


class Flap(_PoolScoped):
    """Alternately down and up every ``period_s`` seconds, starting down."""

    kind: Literal["flap"]
    period_s: Annotated[float, Field(ge=0.1, le=86_400.0)]
    effect: Literal["silence", "errors"] = "silence"
    error_rate: _Rate = 1.0
    outcomes: OutcomeMix | None = None

    def is_down(self, t_ms: int, origin_ms: int) -> bool:
        """Whether event time ``t_ms`` (inside the incident) falls in a down phase."""
        return (t_ms - self.start_ms(origin_ms)) // self.period_ms % 2 == 0

    @property
    def period_ms(self) -> int:
        """The half-cycle in whole milliseconds."""
        return max(1, round(self.period_s * 1000))


class ProxyFailure(_PoolScoped):
    """One proxy, or a fraction of the scope's proxies, fails."""

    kind: Literal["proxy_failure"]
    proxy_index: Annotated[int | None, Field(ge=0)] = Field(
        default=None, description="Index of the proxy within pool x region (needs region)"
    )
    fraction: Annotated[float | None, Field(gt=0.0, le=1.0)] = Field(
        default=None, description="Share of the scope's proxies that fail"
    )
    error_rate: _Rate = 1.0
    outcomes: OutcomeMix = Field(default_factory=lambda: dict(_FAILURE_MIX))

    @model_validator(mode="after")
    def _one_target(self) -> ProxyFailure:
        if (self.proxy_index is None) == (self.fraction is None):
            raise ValueError("proxy_failure needs exactly one of proxy_index or fraction")
        if self.proxy_index is not None and self.region is None:
            raise ValueError("proxy_failure with proxy_index needs a region")
        return self


class TrafficMultiplier(_Incident):
    """The scope's request rate is multiplied by ``factor`` (0 is allowed)."""

    kind: Literal["traffic_multiplier"]
    factor: _Factor


Incident = Annotated[
    ErrorSpike | LatencyMultiplier | Silence | Flap | ProxyFailure | TrafficMultiplier,
    Field(discriminator="kind"),
]
"""Any incident, told apart by its ``kind``."""
