"""Cost of the pure alert rule engine at fleet scale: per-window evaluation, snapshot, restore.

Feeds the shipped example rules (config/rules.example.yaml: threshold rules on every scope
level, two baseline rules, an absence rule, a per-proxy rule) with synthetic closed windows:
pools x regions pool x region aggregates per 10 s window and proxies per 60 s window, a few
pools breaching and a few going silent halfway, so alerts fire, group and re-send. Times
``evaluate_window`` per window (both streams, wall time and CPU time: the machine is shared),
``tick``, and the JSON snapshot / restore of the state (baselines of every scope included).
Input aggregates are built before timing.

Run: .venv/bin/python benchmarks/rule_engine.py [--pools 50 --regions 20 --proxies-per-scope 10]
Writes benchmarks/results/rule_engine.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import random
import statistics
import time
from pathlib import Path
from typing import Any

from schemas.aggregates import LatencyHistogram, Scope, WindowAggregate
from schemas.events import Outcome
from schemas.latency_buckets import bucket_key
from schemas.rules import parse_rules
from stream_app.core.rules import EngineOptions, RuleEngine

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "rule_engine.json"
T0_MS = 1_800_000_000_000


def _agg(
    rng: random.Random, scope: Scope, end_ms: int, window_s: int, requests: int, bad: bool
) -> WindowAggregate:
    errors = requests // 3 if bad else rng.randint(0, max(1, requests // 50))
    timeouts = errors // 2
    buckets: dict[int, int] = {}
    for _ in range(12):  # a spread of latency buckets, like real windows
        key = bucket_key(rng.lognormvariate(5.0, 0.6))
        buckets[key] = buckets.get(key, 0) + requests // 12
    buckets[bucket_key(150.0)] = buckets.get(bucket_key(150.0), 0) + requests % 12
    return WindowAggregate(
        scope=scope,
        window_start_ms=end_ms - window_s * 1000,
        window_end_ms=end_ms,
        window_s=window_s,
        requests=requests,
        successes=requests - errors,
        outcomes={
            k: v
            for k, v in {
                Outcome.SUCCESS: requests - errors,
                Outcome.TIMEOUT: timeouts,
                Outcome.HTTP_ERROR: errors - timeouts,
            }.items()
            if v
        },
        status_classes={"2xx": requests - errors, "5xx": errors} if errors else {"2xx": requests},
        latency=LatencyHistogram(buckets=buckets, count=requests, sum_ms=150.0 * requests),
    )


def build(
    args: argparse.Namespace,
) -> tuple[list[list[WindowAggregate]], list[list[WindowAggregate]]]:
    rng = random.Random(args.seed)
    pools = [f"pool-{i}" for i in range(args.pools)]
    regions = [f"eu-{i}" for i in range(args.regions)]
    bad_pools, silent_pools = set(pools[:5]), set(pools[5:8])
    half = args.windows // 2
    scope_windows = []
    for w in range(args.windows):
        end = T0_MS + (w + 1) * 10_000
        scope_windows.append(
            [
                _agg(rng, Scope(pool=p, region=r), end, 10, 400, bad=w >= half and p in bad_pools)
                for p in pools
                if not (w >= half and p in silent_pools)
                for r in regions
            ]
        )
    proxy_windows = []
    for w in range(args.proxy_windows):
        end = T0_MS + (w + 1) * 60_000
        proxy_windows.append(
            [
                _agg(
                    rng,
                    Scope(
                        pool=p,
                        region=r,
                        proxy_id=hashlib.sha256(f"{p}/{r}/{k}".encode()).hexdigest()[:16],
                    ),
                    end,
                    60,
                    240,
                    bad=k == 0 and w >= args.proxy_windows // 2,
                )
                for p in pools
                for r in regions
                for k in range(args.proxies_per_scope)
            ]
        )
    return scope_windows, proxy_windows


def _summary(values_ms: list[float]) -> dict[str, float]:
    ordered = sorted(values_ms)
    return {
        "mean_ms": statistics.fmean(ordered),
        "p50_ms": ordered[len(ordered) // 2],
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "max_ms": ordered[-1],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pools", type=int, default=50)
    parser.add_argument("--regions", type=int, default=20)
    parser.add_argument("--proxies-per-scope", type=int, default=10)
    parser.add_argument("--windows", type=int, default=60)
    parser.add_argument("--proxy-windows", type=int, default=4)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    example = ROOT / "config" / "rules.example.yaml"
    rule_set = parse_rules(example.read_text(encoding="utf-8"), str(example))
    started = time.perf_counter()
    scope_windows, proxy_windows = build(args)
    build_s = time.perf_counter() - started

    engine = RuleEngine(rule_set, EngineOptions(window_s=10, proxy_window_s=60))
    scope_ms, proxy_ms, tick_ms = [], [], []
    scope_cpu_ms, proxy_cpu_ms = [], []
    events = resends = notifications = 0
    proxy_iter = iter(enumerate(proxy_windows))
    for w, aggs in enumerate(scope_windows):
        end = T0_MS + (w + 1) * 10_000
        t, c = time.perf_counter(), time.process_time()
        out = engine.evaluate_window(aggs, window_end_ms=end, now_ms=end + 2_000)
        scope_ms.append((time.perf_counter() - t) * 1000)
        scope_cpu_ms.append((time.process_time() - c) * 1000)
        events, resends = events + len(out.events), resends + len(out.resends)
        notifications += len(out.notifications)
        if (w + 1) % 6 == 0:
            step = next(proxy_iter, None)
            if step is not None:
                pw, paggs = step
                pend = T0_MS + (pw + 1) * 60_000
                t, c = time.perf_counter(), time.process_time()
                out = engine.evaluate_window(
                    paggs, window_end_ms=pend, now_ms=end + 2_500, per_proxy=True
                )
                proxy_ms.append((time.perf_counter() - t) * 1000)
                proxy_cpu_ms.append((time.process_time() - c) * 1000)
                events, resends = events + len(out.events), resends + len(out.resends)
        t = time.perf_counter()
        out = engine.tick(end + 7_000)
        tick_ms.append((time.perf_counter() - t) * 1000)
        resends += len(out.resends)
        notifications += len(out.notifications)

    t = time.perf_counter()
    text = json.dumps(engine.snapshot())
    snapshot_ms = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    RuleEngine(rule_set, EngineOptions(), state=json.loads(text))
    restore_ms = (time.perf_counter() - t) * 1000

    result: dict[str, Any] = {
        "benchmark": "rule_engine",
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "parameters": vars(args) | {"rules": len(rule_set.rules)},
        "build_inputs_s": build_s,
        "scope_window": _summary(scope_ms)
        | {"cpu_mean_ms": statistics.fmean(scope_cpu_ms)}
        | {"aggregates_per_window": len(scope_windows[0]), "windows": len(scope_ms)},
        "proxy_window": _summary(proxy_ms)
        | {"cpu_mean_ms": statistics.fmean(proxy_cpu_ms) if proxy_cpu_ms else 0.0}
        | {"aggregates_per_window": len(proxy_windows[0]) if proxy_windows else 0},
        "tick": _summary(tick_ms),
        "snapshot": {"json_ms": snapshot_ms, "bytes": len(text), "restore_ms": restore_ms},
        "emitted": {"events": events, "resends": resends, "notifications": notifications},
        "stats": engine.stats.as_dict(),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
