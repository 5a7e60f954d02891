"""Event generation for one time slot: Poisson arrivals and the attributes of each request.

:class:`SlotGenerator` turns (slot, scope) into records, from a random stream seeded by
``(seed, slot, scope)`` alone, so any slot can be generated on its own, in any order, with the
same result. Within a slot, each segment of constant incident conditions gets exponential gaps at
its rate; each arrival then draws a proxy (uniformly) and target domain, an outcome (the
proxy's own error probability unless an incident overrides it), a latency (log-normal body from a
quantile table, Pareto tail, clamped at the pool timeout, scaled per region, pool, proxy, outcome
and incident), a status code, sizes and attempts. Delivery times, when the scenario has disorder,
come from a second stream so the events themselves stay the same.
"""

from __future__ import annotations

import bisect
import math
import random

from schemas.events import Outcome
from stream_app.simulator.distributions import TABLE_SIZE, lognormal_table
from stream_app.simulator.effects import IncidentSchedule
from stream_app.simulator.fleet import (
    MAX_PROXIES_PER_SCOPE,
    STREAM_DELIVERY,
    STREAM_EVENTS,
    FleetModel,
    ScopeModel,
    derive_seed,
)
from stream_app.simulator.outcomes import PROFILES, RETRIED_STATUSES
from stream_app.simulator.scenario import Scenario

__all__ = ["SLOT_MS", "Record", "SlotGenerator"]

SLOT_MS = 1_000
"""Granularity of the random streams (not of the events, which are placed to the millisecond)."""

_BYTES_OUT_MEDIAN = 600
_HEADERS_ONLY_BYTES = 300
_RETRY_LATENCY_FACTOR = 1.8
_TIMEOUT_SPREAD = 0.02
_SUCCESS = PROFILES[Outcome.SUCCESS]
_SUCCESS_OUTCOME = Outcome.SUCCESS
_HEADERS_ONLY_STATUSES = frozenset({204, 304})

Record = tuple[
    int,  # 0 delivery_ms (equals ts_ms when delivered in order)
    int,  # 1 ts_ms
    int,  # 2 scope index
    int,  # 3 sequence within (slot, scope)
    str,  # 4 pool
    str,  # 5 region
    str | None,  # 6 proxy_id
    Outcome,  # 7 outcome
    float,  # 8 latency_ms
    int | None,  # 9 status_code
    int,  # 10 bytes_in
    int,  # 11 bytes_out
    int,  # 12 attempts
    str | None,  # 13 target_domain
    str,  # 14 source_host
]
"""One generated event, as the generator's internal tuple (cheap to build and sort)."""


class SlotGenerator:
    """Generates the records of one slot of event time, for every scope of the fleet."""

    def __init__(
        self,
        scenario: Scenario,
        seed: int,
        origin_ms: int,
        fleet: FleetModel,
        schedule: IncidentSchedule,
    ) -> None:
        self.scenario = scenario
        self.seed = seed
        self.origin_ms = origin_ms
        self.fleet = fleet
        self.schedule = schedule
        self._body = lognormal_table(scenario.fleet.latency.sigma)
        self._bytes_in = lognormal_table(1.0)
        self._bytes_out = lognormal_table(0.5)
        self._rng = random.Random()
        self._delivery_rng = random.Random()

    def _diurnal_factor(self, scope: ScopeModel, slot_mid_ms: int) -> float:
        diurnal = self.scenario.diurnal
        if diurnal.amplitude == 0.0:
            return 1.0
        local_h = slot_mid_ms / 3_600_000.0 + scope.utc_offset_h
        phase = 2.0 * math.pi * (local_h - diurnal.peak_hour_local) / 24.0
        return 1.0 + diurnal.amplitude * math.cos(phase)

    def slot_records(self, slot: int) -> list[Record]:
        """Every record of ``slot`` (unsorted), with delivery times."""
        out: list[Record] = []
        start_ms = self.origin_ms + slot * SLOT_MS
        for scope in self.fleet.scopes:
            rate_per_ms = scope.rate_per_ms * self._diurnal_factor(scope, start_ms + SLOT_MS // 2)
            if rate_per_ms > 0.0:
                self._scope_slot(scope, slot, start_ms, rate_per_ms, out)
        return out

    def _scope_slot(
        self, scope: ScopeModel, slot: int, start_ms: int, rate_per_ms: float, out: list[Record]
    ) -> None:
        fleet_spec = self.scenario.fleet
        rng = self._rng
        rng.seed(derive_seed(self.seed, slot, scope.index, STREAM_EVENTS))
        rnd = rng.random
        log = math.log
        body, bytes_in_t, bytes_out_t = self._body, self._bytes_in, self._bytes_out
        table_size = TABLE_SIZE
        cache = self.fleet.proxy_cache()
        make_proxy = self.fleet.proxy
        base_index = scope.index * MAX_PROXIES_PER_SCOPE
        count = scope.proxy_count
        domains = fleet_spec.target_domains
        domain_count = len(domains)
        pool, region, sidx = scope.pool, scope.region, scope.index
        latency_ms, timeout_ms = scope.latency_ms, scope.timeout_ms
        scope_mode = scope.error_mode
        tail_fraction = fleet_spec.latency.tail_fraction
        tail_exponent = -1.0 / fleet_spec.latency.tail_alpha
        retry_fraction = fleet_spec.retry_fraction
        max_attempts = fleet_spec.max_attempts
        append = out.append
        bisect_right = bisect.bisect_right
        success_statuses = _SUCCESS.statuses
        success_cumulative = _SUCCESS.status_cumulative
        success_bytes_in = _SUCCESS.bytes_in_median
        seq = 0
        first = len(out)
        for seg_start, seg_end, cond in self.schedule.segments(sidx, start_ms, start_ms + SLOT_MS):
            rate = rate_per_ms * cond.rate_factor
            if rate <= 0.0:
                continue
            mean_gap_ms = 1.0 / rate
            override, failing = cond.error_mode, cond.failing
            latency_scale = latency_ms * cond.latency_factor
            # Offsets from the slot start: exact in floating point whatever the origin.
            t = float(seg_start - start_ms)
            t_end = seg_end - start_ms
            while True:
                t -= log(1.0 - rnd()) * mean_gap_ms
                if t >= t_end:
                    break
                ts = start_ms + int(t)
                # Which proxy, and (from the same draw's leftover fraction) which target.
                x = rnd() * count
                pidx = int(x)
                proxy = cache.get(base_index + pidx) or make_proxy(scope, pidx)
                domain = domains[int((x - pidx) * domain_count)] if domain_count else None
                # Outcome: below the error probability, the scaled draw picks the error kind.
                if failing is not None and pidx in failing:
                    mode = failing[pidx]
                    p_error = mode.probability
                elif override is not None:
                    mode = override
                    p_error = mode.probability
                else:
                    mode = scope_mode
                    p_error = proxy.error_probability
                u = rnd()
                y = rnd() * table_size
                i = int(y)
                if u >= p_error:
                    # Success, the common case: the general path below, specialised.
                    status = success_statuses[bisect_right(success_cumulative, y - i)]
                    latency = latency_scale * proxy.latency_factor * body[i]
                    w = rnd()
                    if w < tail_fraction:
                        latency *= (1.0 - w / tail_fraction) ** tail_exponent
                    attempts = 1
                    if rnd() < retry_fraction:
                        attempts = 2
                        latency *= _RETRY_LATENCY_FACTOR
                    if latency > timeout_ms:
                        latency = timeout_ms
                    z = rnd() * table_size
                    j = int(z)
                    if status in _HEADERS_ONLY_STATUSES:
                        bytes_in = int(_HEADERS_ONLY_BYTES * bytes_out_t[j])
                    else:
                        bytes_in = int(success_bytes_in * bytes_in_t[j])
                    bytes_out = int(_BYTES_OUT_MEDIAN * bytes_out_t[int((z - j) * table_size)])
                    append(
                        (ts, ts, sidx, seq, pool, region, proxy.proxy_id, _SUCCESS_OUTCOME,
                         latency, status, bytes_in, bytes_out, attempts, domain,
                         proxy.source_host)
                    )  # fmt: skip
                    seq += 1
                    continue
                # An error: the scaled draw picks its kind; the leftover fraction its status.
                profile = mode.profile_at(u / p_error)
                statuses = profile.statuses
                if len(statuses) == 1:
                    status = statuses[0]
                else:
                    status = statuses[bisect_right(profile.status_cumulative, y - i)]
                attempts = 1
                if profile.is_timeout:
                    latency = timeout_ms * (1.0 + _TIMEOUT_SPREAD * (y - i))
                else:
                    latency = latency_scale * proxy.latency_factor * body[i]
                    latency *= profile.latency_scale
                    w = rnd()
                    if w < tail_fraction:
                        latency *= (1.0 - w / tail_fraction) ** tail_exponent
                    if status in RETRIED_STATUSES:
                        attempts = max_attempts
                        latency *= max_attempts
                    if latency > timeout_ms:
                        latency = timeout_ms
                z = rnd() * table_size
                j = int(z)
                if profile.bytes_in_median:
                    bytes_in = int(profile.bytes_in_median * bytes_in_t[j])
                else:
                    bytes_in = 0
                if profile.sends_request:
                    bytes_out = int(_BYTES_OUT_MEDIAN * bytes_out_t[int((z - j) * table_size)])
                else:
                    bytes_out = 0
                append(
                    (ts, ts, sidx, seq, pool, region,
                     proxy.proxy_id if profile.has_proxy else None, profile.outcome, latency,
                     status, bytes_in, bytes_out, attempts, domain, proxy.source_host)
                )  # fmt: skip
                seq += 1
        if seq and not self.scenario.delivery.in_order:
            self._assign_delivery(slot, sidx, out, first)

    def _assign_delivery(self, slot: int, scope_index: int, out: list[Record], first: int) -> None:
        delivery = self.scenario.delivery
        rng = self._delivery_rng
        rng.seed(derive_seed(self.seed, slot, scope_index, STREAM_DELIVERY))
        rnd = rng.random
        jitter_span = delivery.jitter_ms + 1
        delayed_fraction = delivery.delayed_fraction
        delay_min = delivery.delay_min_ms
        delay_span = delivery.delay_max_ms - delay_min + 1
        for n in range(first, len(out)):
            r = out[n]
            delivered = r[1] + int(rnd() * jitter_span)
            if delayed_fraction and rnd() < delayed_fraction:
                delivered += delay_min + int(rnd() * delay_span)
            out[n] = (delivered, *r[1:])
