"""Helpers of the simulator tests: a small fleet, and tolerances computed from sample sizes."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from schemas.events import Outcome
from schemas.wire import WireEvent
from stream_app.simulator import Scenario, scenario_from_data

Z = 5.0
"""Tolerance in standard deviations: a correct generator fails a check with p < 1e-6."""

ORIGIN_MS = 1_750_000_000_000


def small_scenario(
    incidents: list[dict[str, Any]] | None = None, **sections: dict[str, Any]
) -> Scenario:
    """2 pools x 2 regions x 50 proxies, 2,000 requests/s in all, plus the given incidents."""
    data: dict[str, Any] = {
        "name": "test",
        "fleet": {
            "key": "test-simulator-fleet-key",
            "regions": [
                {"name": "eu", "base_latency_ms": 100, "traffic_share": 1},
                {"name": "us", "base_latency_ms": 50, "traffic_share": 1},
            ],
            "pools": [
                {"name": "alpha", "rate_per_s": 1200, "error_rate": 0.05, "proxies_per_region": 50},
                {"name": "beta", "rate_per_s": 800, "error_rate": 0.02, "proxies_per_region": 50},
            ],
        },
        "incidents": incidents or [],
    }
    for key, value in sections.items():
        if key == "fleet":
            data["fleet"] = {**data["fleet"], **value}
        else:
            data[key] = value
    return scenario_from_data(data, "<test>")


def binomial_ok(successes: int, trials: int, p: float, z: float = Z) -> bool:
    """Whether ``successes`` of ``trials`` is consistent with probability ``p``."""
    sd = math.sqrt(max(trials * p * (1 - p), 1.0))
    return abs(successes - trials * p) <= z * sd


def poisson_ok(count: int, expected: float, z: float = Z) -> bool:
    """Whether a Poisson count is consistent with its expectation."""
    return abs(count - expected) <= z * math.sqrt(max(expected, 1.0))


def error_count(events: Iterable[WireEvent]) -> tuple[int, int]:
    """(errors, total) of ``events``."""
    errors = total = 0
    for ev in events:
        total += 1
        errors += ev.outcome is not Outcome.SUCCESS
    return errors, total


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def in_scope(
    events: Iterable[WireEvent], pool: str | None = None, region: str | None = None
) -> list[WireEvent]:
    return [
        ev
        for ev in events
        if (pool is None or ev.pool == pool) and (region is None or ev.region == region)
    ]


def in_time(events: Iterable[WireEvent], start_ms: int, end_ms: int) -> list[WireEvent]:
    return [ev for ev in events if start_ms <= ev.ts_ms < end_ms]
