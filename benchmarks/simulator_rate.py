"""Throughput of the fleet simulator, in virtual time and paced against the wall clock.

Virtual time: records/s (the generator's raw tuples), WireEvents/s (``events_between``) and emit
kwargs/s (``params_between``), streamed from a fleet start, for the demo scenario in event-time
order and with its delivery disorder (a range that does not start with the fleet first replays
the scenario's maximum lateness: 20 s for the demo), and for a fleet of 50 pools x 20 regions x
10,000 proxies per pool/region (construction timed separately; the pass also computes every proxy
id it meets, as a fresh fleet does). Real time: ``run_realtime`` at 20,000 events/s into a no-op
emit, reporting the CPU share it took (process CPU time / wall time) and its pacing lag.

Run: .venv/bin/python benchmarks/simulator_rate.py [--seconds N] [--realtime-s N]
Writes benchmarks/results/simulator_rate.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from stream_app.simulator import (
    DeliverySpec,
    FleetSimulator,
    FleetSpec,
    PoolSpec,
    RegionSpec,
    Scenario,
    load_scenario,
    run_realtime,
)

RESULTS = Path(__file__).resolve().parent / "results" / "simulator_rate.json"
ORIGIN_MS = 1_750_000_000_000


def _rate(make: Callable[..., Iterator[Any]], start_ms: int, seconds: float) -> dict[str, float]:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    n = 0
    # As a stream from a fleet start (what run_realtime does): no lateness window to replay.
    for _ in make(start_ms, start_ms + int(seconds * 1000), first_ts_ms=start_ms):
        n += 1
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    return {
        "events": n,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "events_per_s_wall": round(n / wall),
        "events_per_cpu_s": round(n / cpu) if cpu > 0 else 0,
    }


def _virtual(name: str, scenario: Scenario, seconds: float) -> dict[str, Any]:
    sim = FleetSimulator(scenario, seed=1, origin_ms=ORIGIN_MS)
    # Warm the proxy cache over the first seconds, then measure later, fresh, ranges.
    sum(1 for _ in sim.records(ORIGIN_MS, ORIGIN_MS + 3_000))
    base = ORIGIN_MS + 10_000
    out = {
        "scenario": name,
        "configured_rate_per_s": scenario.total_rate_per_s,
        "records": _rate(sim.records, base, seconds),
        "events_between": _rate(sim.events_between, base + 100_000, seconds),
        "params_between": _rate(sim.params_between, base + 200_000, seconds),
    }
    print(
        f"{name:<32} records {out['records']['events_per_cpu_s']:>9,}/cpu-s  "
        f"WireEvent {out['events_between']['events_per_cpu_s']:>9,}/cpu-s  "
        f"params {out['params_between']['events_per_cpu_s']:>9,}/cpu-s"
    )
    return out


def _large_fleet() -> Scenario:
    regions = [RegionSpec(name=f"region-{r:02d}", base_latency_ms=40 + 10 * r) for r in range(20)]
    pools = [
        PoolSpec(name=f"pool-{p:02d}", rate_per_s=2_000, proxies_per_region=10_000)
        for p in range(50)
    ]
    return Scenario(name="large", fleet=FleetSpec(pools=pools, regions=regions))


async def _realtime(rate_per_s: float, seconds: float) -> dict[str, Any]:
    scenario = load_scenario().with_total_rate(rate_per_s)
    sim = FleetSimulator(scenario, seed=1, origin_ms=time.time_ns() // 1_000_000)
    calls = 0

    def emit(**_: object) -> bool:
        nonlocal calls
        calls += 1
        return True

    cpu0, wall0 = time.process_time(), time.perf_counter()
    report = await run_realtime(sim, emit, duration_s=seconds, stop=asyncio.Event())
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    out = {
        "configured_rate_per_s": rate_per_s,
        "duration_s": seconds,
        "emitted": report.emitted,
        "emitted_per_s": round(report.emitted / wall),
        "cpu_share_of_one_core": round(cpu / wall, 3),
        "cpu_us_per_event": round(cpu / max(report.emitted, 1) * 1e6, 2),
        "ticks": report.ticks,
        "late_ticks": report.late_ticks,
        "max_lag_ms": round(report.max_lag_ms, 1),
    }
    print(
        f"run_realtime {rate_per_s:,.0f}/s for {seconds:.0f} s: "
        f"emitted {out['emitted_per_s']:,}/s, "
        f"CPU {out['cpu_share_of_one_core']:.1%} of a core ({out['cpu_us_per_event']} us/event), "
        f"max lag {out['max_lag_ms']} ms, {report.late_ticks} late ticks"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="virtual seconds per pass")
    parser.add_argument("--realtime-s", type=float, default=10.0, help="real-time run length")
    args = parser.parse_args()

    demo = load_scenario()
    in_order = demo.model_copy(update={"delivery": DeliverySpec()})
    results: dict[str, Any] = {
        "benchmark": "simulator_rate",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_avg_1m_at_start": os.getloadavg()[0],
        "virtual": [],
    }
    results["virtual"].append(_virtual("demo, event-time order", in_order, args.seconds))
    results["virtual"].append(_virtual("demo, with delivery disorder", demo, args.seconds))
    t0 = time.perf_counter()
    large = _large_fleet()
    FleetSimulator(large, seed=1, origin_ms=ORIGIN_MS)
    results["large_fleet_build_s"] = round(time.perf_counter() - t0, 3)
    print(f"50 pools x 20 regions x 10k proxies: built in {results['large_fleet_build_s']} s")
    results["virtual"].append(_virtual("50x20x10k, 100k/s", large, max(2.0, args.seconds / 4)))
    results["realtime"] = asyncio.run(_realtime(20_000, args.realtime_s))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
