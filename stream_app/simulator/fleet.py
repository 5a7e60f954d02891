"""The simulated fleet: one :class:`ScopeModel` per pool x region, and its proxies.

Proxies of a scope are numbered ``0 .. proxy_count - 1``. A proxy's id is computed the way the
producer computes ids (``HMAC-SHA256(fleet_key, "host:port")``, 32 hex characters) over a
synthetic address that is unique in the fleet, so ids look and behave like real ones; nothing
here is a real address. Ids and per-proxy traits are computed on first use and cached (bounded),
so a fleet of 50 pools x 20 regions x 10,000 proxies costs nothing until its proxies are used.

Health heterogeneity: ``floor(bad_fraction * proxy_count)`` proxies of each scope, chosen from the
seed, are bad (``bad_error_factor`` times the error rate, ``bad_latency_factor`` times the
latency); the good ones' error probability is lowered so that the scope's mean error probability
over its proxies is exactly the pool's ``error_rate``. Good proxies' latency factors spread
log-normally (``latency_spread_sigma``) around 1.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
from dataclasses import dataclass
from statistics import NormalDist

from stream_app.simulator.outcomes import ErrorMode, compile_error_mode
from stream_app.simulator.scenario import FleetSpec

__all__ = [
    "MAX_PROXIES_PER_SCOPE",
    "PROXY_ID_HEX_CHARS",
    "FleetModel",
    "ProxyTraits",
    "ScopeModel",
    "derive_seed",
    "proxy_address",
    "proxy_id_for",
]

PROXY_ID_HEX_CHARS = 32
MAX_PROXIES_PER_SCOPE = 100_000
_PROXY_CACHE_SIZE = 1_000_000
_NORMAL = NormalDist()

STREAM_EVENTS = 0
STREAM_DELIVERY = 1
STREAM_HEALTH = 2
STREAM_INCIDENT = 3


def derive_seed(seed: int, slot: int, scope: int, stream: int) -> int:
    """A distinct ``random.Random`` seed for one (slot, scope, stream); ``slot`` may be < 0."""
    return ((seed * (1 << 48) + slot + (1 << 47)) * (1 << 24) + scope) * 8 + stream


def proxy_address(global_index: int) -> str:
    """The synthetic ``ip:port`` of a proxy (private 10/8 range, unique per global index)."""
    g = global_index
    return f"10.{(g >> 16) & 255}.{(g >> 8) & 255}.{g & 255}:{1024 + (g >> 24)}"


def proxy_id_for(fleet_key: bytes, address: str) -> str:
    """The producer's proxy id construction: HMAC-SHA256 hex, truncated to 32 characters."""
    return hmac.digest(fleet_key, address.encode(), "sha256").hex()[:PROXY_ID_HEX_CHARS]


@dataclass(frozen=True, slots=True)
class ProxyTraits:
    """One proxy as the generator uses it."""

    proxy_id: str
    error_probability: float
    latency_factor: float
    source_host: str


@dataclass(frozen=True, slots=True)
class ScopeModel:
    """One pool in one region, with everything the generator needs precomputed."""

    index: int
    pool: str
    region: str
    pool_index: int
    region_index: int
    proxy_count: int
    rate_per_ms: float
    """Base request rate (before diurnal shape and incidents), requests per millisecond."""
    latency_ms: float
    """Median success latency through an average good proxy."""
    timeout_ms: float
    error_mode: ErrorMode
    """The pool's error mix; its probability is the pool's mean error rate."""
    bad_proxies: frozenset[int]
    good_error_probability: float
    bad_error_probability: float
    utc_offset_h: float
    source_hosts: tuple[str, ...]


def _source_host(region: str, region_index: int, n: int) -> str:
    name = f"sim-{region}-{n:02d}"
    return name if len(name) <= 64 else f"sim-r{region_index}-{n:02d}"


class FleetModel:
    """All scopes of a fleet (``pool_index * region_count + region_index``) and their proxies."""

    def __init__(self, spec: FleetSpec, seed: int) -> None:
        self.spec = spec
        self.seed = seed
        # HMAC state after the key, copied per proxy: half the cost of a one-shot hmac call.
        self._keyed_hmac = hmac.new(spec.key.encode(), digestmod=hashlib.sha256)
        self._proxy_cache: dict[int, ProxyTraits] = {}
        shares = [r.traffic_share for r in spec.regions]
        total_share = sum(shares)
        health = spec.health
        scopes: list[ScopeModel] = []
        for pi, pool in enumerate(spec.pools):
            for ri, region in enumerate(spec.regions):
                index = pi * len(spec.regions) + ri
                count = pool.proxy_count(region.name)
                bad = _choose(count, math.floor(health.bad_fraction * count), seed, index)
                p_bad = min(1.0, pool.error_rate * health.bad_error_factor)
                p_good = (pool.error_rate * count - p_bad * len(bad)) / (count - len(bad))
                hosts = tuple(
                    _source_host(region.name, ri, n) for n in range(spec.hosts_per_region)
                )
                scopes.append(
                    ScopeModel(
                        index=index,
                        pool=pool.name,
                        region=region.name,
                        pool_index=pi,
                        region_index=ri,
                        proxy_count=count,
                        rate_per_ms=pool.rate_per_s * region.traffic_share / total_share / 1000.0,
                        latency_ms=region.base_latency_ms * pool.latency_factor,
                        timeout_ms=pool.timeout_ms,
                        error_mode=compile_error_mode(pool.error_rate, pool.error_mix),
                        bad_proxies=bad,
                        good_error_probability=max(0.0, p_good),
                        bad_error_probability=p_bad,
                        utc_offset_h=region.utc_offset_h,
                        source_hosts=hosts,
                    )
                )
        self.scopes: tuple[ScopeModel, ...] = tuple(scopes)
        self._by_name = {(s.pool, s.region): s for s in scopes}

    def scope(self, pool: str, region: str) -> ScopeModel:
        """The scope of ``pool`` in ``region`` (``KeyError`` if unknown)."""
        return self._by_name[(pool, region)]

    def proxy(self, scope: ScopeModel, index: int) -> ProxyTraits:
        """Traits of proxy ``index`` of ``scope`` (computed once, then cached)."""
        global_index = scope.index * MAX_PROXIES_PER_SCOPE + index
        traits = self._proxy_cache.get(global_index)
        if traits is None:
            traits = self._make_proxy(scope, index, global_index)
        return traits

    def _make_proxy(self, scope: ScopeModel, index: int, global_index: int) -> ProxyTraits:
        mac = self._keyed_hmac.copy()
        mac.update(proxy_address(global_index).encode())
        digest = mac.digest()
        proxy_id = digest.hex()[:PROXY_ID_HEX_CHARS]
        # The digest's tail bits are uniform: they place the proxy in the latency spread.
        u = (int.from_bytes(digest[24:32], "big") + 0.5) / 2.0**64
        factor = math.exp(self.spec.health.latency_spread_sigma * _NORMAL.inv_cdf(u))
        if index in scope.bad_proxies:
            p_error = scope.bad_error_probability
            factor *= self.spec.health.bad_latency_factor
        else:
            p_error = scope.good_error_probability
        traits = ProxyTraits(
            proxy_id=proxy_id,
            error_probability=p_error,
            latency_factor=factor,
            source_host=scope.source_hosts[index % len(scope.source_hosts)],
        )
        if len(self._proxy_cache) >= _PROXY_CACHE_SIZE:
            self._proxy_cache.clear()
        self._proxy_cache[global_index] = traits
        return traits

    def proxy_cache(self) -> dict[int, ProxyTraits]:
        """The live cache (global index -> traits), for the generator's hot loop."""
        return self._proxy_cache

    def choose_proxies(self, scope: ScopeModel, count: int, stream_key: int) -> frozenset[int]:
        """``count`` distinct proxy indices of ``scope``, reproducible for ``stream_key``."""
        return _choose(scope.proxy_count, count, stream_key, scope.index, STREAM_INCIDENT)


def _choose(
    population: int, count: int, seed: int, scope: int, stream: int = STREAM_HEALTH
) -> frozenset[int]:
    """``count`` distinct integers of ``range(population)``, from ``random()`` draws only."""
    count = min(count, population)
    if count * 2 > population:
        rest = _choose(population, population - count, seed, scope, stream)
        return frozenset(i for i in range(population) if i not in rest)
    rng = random.Random(derive_seed(seed, 0, scope, stream))
    chosen: set[int] = set()
    while len(chosen) < count:
        chosen.add(int(rng.random() * population))
    return frozenset(chosen)
