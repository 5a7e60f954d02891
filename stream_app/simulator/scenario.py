"""The scenario model: fleet shape, traffic, delivery disorder and scripted incidents.

A scenario is plain data (pydantic, frozen, unknown keys rejected) loaded from YAML by
:mod:`stream_app.simulator.loader`. Defaults describe the demo fleet: 4 pools x 3 regions with
120-300 proxies per pool and region, about 5,000 requests/s in all, no incidents.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.events import DOMAIN_PATTERN, LABEL_PATTERN
from stream_app.simulator.incidents import Incident, OutcomeMix, ProxyFailure
from stream_app.simulator.outcomes import DEFAULT_ERROR_MIX

__all__ = [
    "DeliverySpec",
    "DiurnalSpec",
    "FleetSpec",
    "LatencySpec",
    "PoolSpec",
    "ProxyHealthSpec",
    "RegionSpec",
    "Scenario",
]

_Label = Annotated[str, Field(pattern=LABEL_PATTERN)]
_Domain = Annotated[str, Field(pattern=DOMAIN_PATTERN)]
_FROZEN = ConfigDict(extra="forbid", frozen=True)


class RegionSpec(BaseModel):
    """A region: where proxies exit, with its own base latency and share of each pool's traffic."""

    model_config = _FROZEN

    name: _Label
    base_latency_ms: Annotated[float, Field(gt=0.0, le=60_000.0)] = 80.0
    """Median latency of a success through an average proxy of an average pool."""
    traffic_share: Annotated[float, Field(gt=0.0)] = 1.0
    """Relative weight of this region in every pool's traffic (normalised over regions)."""
    utc_offset_h: Annotated[float, Field(ge=-12.0, le=14.0)] = 0.0
    """Local time offset, for the diurnal shape."""


class PoolSpec(BaseModel):
    """A proxy pool, present in every region."""

    model_config = _FROZEN

    name: _Label
    rate_per_s: Annotated[float, Field(ge=0.0, le=10_000_000.0)] = 1_000.0
    """Requests per second over all regions (before diurnal shape and incidents)."""
    error_rate: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.02
    """Share of requests that do not succeed, on average over the pool's proxies."""
    error_mix: OutcomeMix = Field(default_factory=lambda: dict(DEFAULT_ERROR_MIX))
    latency_factor: Annotated[float, Field(gt=0.0, le=100.0)] = 1.0
    """Multiplies the regions' base latency (residential proxies are slower than datacenter)."""
    timeout_ms: Annotated[float, Field(gt=0.0, le=600_000.0)] = 30_000.0
    """Latency of a timeout, and the ceiling of every other latency."""
    proxies_per_region: Annotated[int, Field(ge=1, le=100_000)] = 200
    proxies_by_region: dict[str, Annotated[int, Field(ge=1, le=100_000)]] = Field(
        default_factory=dict, description="Per-region override of proxies_per_region"
    )

    def proxy_count(self, region: str) -> int:
        """Proxies of this pool in ``region``."""
        return self.proxies_by_region.get(region, self.proxies_per_region)


class ProxyHealthSpec(BaseModel):
    """Heterogeneity between proxies: a few bad ones, a little spread among the rest."""

    model_config = _FROZEN

    bad_fraction: Annotated[float, Field(ge=0.0, le=0.5)] = 0.02
    """Share of each pool x region's proxies that are bad (rounded to whole proxies)."""
    bad_error_factor: Annotated[float, Field(ge=1.0, le=1_000.0)] = 8.0
    """A bad proxy's error rate relative to a good one's."""
    bad_latency_factor: Annotated[float, Field(ge=1.0, le=100.0)] = 2.5
    latency_spread_sigma: Annotated[float, Field(ge=0.0, le=1.0)] = 0.15
    """Log-normal spread of the per-proxy latency factor of good proxies."""

    @model_validator(mode="after")
    def _bad_share_fits(self) -> ProxyHealthSpec:
        if self.bad_fraction * self.bad_error_factor >= 1.0:
            raise ValueError(
                "bad_fraction x bad_error_factor must stay below 1, or the bad proxies alone "
                "exceed the pool's error rate"
            )
        return self


class LatencySpec(BaseModel):
    """Latency distribution: log-normal body with a Pareto heavy tail."""

    model_config = _FROZEN

    sigma: Annotated[float, Field(ge=0.0, le=3.0)] = 0.45
    """Log-normal shape of the body (0.45: p95 about twice the median)."""
    tail_fraction: Annotated[float, Field(ge=0.0, le=0.5)] = 0.03
    """Share of requests whose latency is further multiplied by a Pareto factor."""
    tail_alpha: Annotated[float, Field(ge=0.5, le=10.0)] = 1.5
    """Pareto shape of the tail (smaller: heavier)."""


class FleetSpec(BaseModel):
    """The fleet: pools x regions x proxies, and how its requests behave."""

    model_config = _FROZEN

    key: Annotated[str, Field(min_length=8)] = "proxywhirl-simulator-fleet"
    """Fleet key: proxy ids are HMAC-SHA256 under it of synthetic addresses (like the producer)."""
    pools: Annotated[list[PoolSpec], Field(min_length=1, max_length=1_000)] = Field(
        default_factory=lambda: [
            PoolSpec(
                name="residential",
                rate_per_s=1_500,
                error_rate=0.03,
                latency_factor=1.6,
                proxies_per_region=300,
            ),
            PoolSpec(
                name="datacenter",
                rate_per_s=2_000,
                error_rate=0.01,
                latency_factor=0.7,
                proxies_per_region=150,
            ),
            PoolSpec(
                name="mobile",
                rate_per_s=600,
                error_rate=0.05,
                latency_factor=2.2,
                timeout_ms=45_000,
                proxies_per_region=120,
            ),
            PoolSpec(name="isp", rate_per_s=900, error_rate=0.02, proxies_per_region=200),
        ]
    )
    regions: Annotated[list[RegionSpec], Field(min_length=1, max_length=1_000)] = Field(
        default_factory=lambda: [
            RegionSpec(name="us-east", base_latency_ms=60, traffic_share=0.45, utc_offset_h=-5),
            RegionSpec(name="eu-west", base_latency_ms=90, traffic_share=0.35, utc_offset_h=1),
            RegionSpec(name="ap-southeast", base_latency_ms=180, traffic_share=0.2, utc_offset_h=8),
        ]
    )
    health: ProxyHealthSpec = Field(default_factory=ProxyHealthSpec)
    latency: LatencySpec = Field(default_factory=LatencySpec)
    retry_fraction: Annotated[float, Field(ge=0.0, le=1.0)] = 0.02
    """Share of successes that needed a retry after a 502/503/504."""
    max_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    """Attempts used by a request that failed with a retried status (502/503/504)."""
    target_domains: Annotated[list[_Domain], Field(max_length=10_000)] = Field(
        default_factory=lambda: [
            "example.com",
            "shop.example.com",
            "api.example.org",
            "news.example.net",
            "img.example.com",
            "search.example.org",
        ]
    )
    """Target domains requests go to (uniformly); empty: events carry no target domain."""
    hosts_per_region: Annotated[int, Field(ge=1, le=1_000)] = 2
    """Simulated fleet hosts per pool x region (``source_host`` of the events)."""

    @model_validator(mode="after")
    def _names_are_consistent(self) -> FleetSpec:
        _unique("pools", [p.name for p in self.pools])
        _unique("regions", [r.name for r in self.regions])
        regions = {r.name for r in self.regions}
        for i, pool in enumerate(self.pools):
            unknown = sorted(set(pool.proxies_by_region) - regions)
            if unknown:
                raise ValueError(f"pools[{i}].proxies_by_region: unknown region(s) {unknown}")
        return self


class DiurnalSpec(BaseModel):
    """A mild daily traffic shape: ``1 + amplitude * cos(2 pi (local_hour - peak) / 24)``."""

    model_config = _FROZEN

    amplitude: Annotated[float, Field(ge=0.0, le=0.95)] = 0.0
    """0: flat traffic. The daily mean rate stays the configured one."""
    peak_hour_local: Annotated[float, Field(ge=0.0, lt=24.0)] = 14.0


class DeliverySpec(BaseModel):
    """How far the delivered stream departs from event-time order."""

    model_config = _FROZEN

    jitter_ms: Annotated[int, Field(ge=0, le=60_000)] = 0
    """Every event is delivered up to this much after its event time (bounded disorder)."""
    delayed_fraction: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    """Share of events delivered much later (a host that was cut off, a replayed spool)."""
    delay_min_ms: Annotated[int, Field(ge=0, le=86_400_000)] = 10_000
    delay_max_ms: Annotated[int, Field(ge=0, le=86_400_000)] = 30_000

    @model_validator(mode="after")
    def _delay_range(self) -> DeliverySpec:
        if self.delay_min_ms > self.delay_max_ms:
            raise ValueError("delay_min_ms must not exceed delay_max_ms")
        return self

    @property
    def max_lateness_ms(self) -> int:
        """The most an event can be delivered after its event time."""
        return self.jitter_ms + (self.delay_max_ms if self.delayed_fraction > 0 else 0)

    @property
    def in_order(self) -> bool:
        """Whether events are delivered exactly at their event time."""
        return self.max_lateness_ms == 0


class Scenario(BaseModel):
    """Everything the simulator needs besides the seed and the origin time."""

    model_config = _FROZEN

    name: Annotated[str, Field(min_length=1, max_length=200)] = "default"
    description: str = ""
    duration_s: Annotated[float | None, Field(gt=0.0)] = None
    """How long the scenario is meant to run (``None``: open-ended)."""
    fleet: FleetSpec = Field(default_factory=FleetSpec)
    diurnal: DiurnalSpec = Field(default_factory=DiurnalSpec)
    delivery: DeliverySpec = Field(default_factory=DeliverySpec)
    incidents: list[Incident] = Field(default_factory=list)

    @model_validator(mode="after")
    def _incidents_match_fleet(self) -> Scenario:
        pools = {p.name: p for p in self.fleet.pools}
        regions = {r.name for r in self.fleet.regions}
        for i, incident in enumerate(self.incidents):
            where = f"incidents[{i}]"
            if incident.pool is not None and incident.pool not in pools:
                raise ValueError(f"{where}.pool: unknown pool {incident.pool!r}")
            if incident.region is not None and incident.region not in regions:
                raise ValueError(f"{where}.region: unknown region {incident.region!r}")
            if (
                isinstance(incident, ProxyFailure)
                and incident.proxy_index is not None
                and incident.region is not None
            ):
                count = pools[incident.pool].proxy_count(incident.region)
                if incident.proxy_index >= count:
                    raise ValueError(
                        f"{where}.proxy_index: {incident.proxy_index} is out of range, "
                        f"{incident.pool}/{incident.region} has {count} proxies"
                    )
        return self

    @property
    def total_rate_per_s(self) -> float:
        """Configured requests per second over the whole fleet."""
        return sum(p.rate_per_s for p in self.fleet.pools)

    def with_total_rate(self, rate_per_s: float) -> Scenario:
        """A copy whose pools are scaled (keeping their proportions) to ``rate_per_s`` in all."""
        if rate_per_s < 0:
            raise ValueError(f"rate_per_s must be >= 0, got {rate_per_s!r}")
        total = self.total_rate_per_s
        pools = [
            p.model_copy(
                update={
                    "rate_per_s": rate_per_s * p.rate_per_s / total
                    if total > 0
                    else rate_per_s / len(self.fleet.pools)
                }
            )
            for p in self.fleet.pools
        ]
        fleet = self.fleet.model_copy(update={"pools": pools})
        return self.model_copy(update={"fleet": fleet})


def _unique(field: str, names: list[str]) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise ValueError(f"{field}[{i}].name: duplicate name {name!r}")
        seen.add(name)
