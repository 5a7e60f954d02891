"""Delay from a breaching window's close to the alert on the Kafka topic and in Alertmanager.

Real components on loopback: a Kafka broker (``--bootstrap`` / ``KAFKA_BOOTSTRAP_SERVERS``, else
a single-node broker from the Maven Central jars via tests/support), Debian's Alertmanager 0.25
(started here), the rule engine behind :class:`ScopeRuleRunner`, the :class:`AlertDispatcher`
with :class:`KafkaAlertSink` and :class:`AlertmanagerSink`. Each round closes one window in
which a new pool breaches an error-rate rule (``for_s: 0``), then measures, from the
``on_windows_closed`` call (the moment the worker closes the window):

- ``kafka_ms``: until a consumer of ``<prefix>.alerts`` has the record (key = fingerprint);
- ``alertmanager_ms``: until ``GET /api/v2/alerts`` lists the alert (polled every 5 ms, so
  up to ~5 ms of the figure is polling granularity).

The breach-to-alert target is "within window + grace + 2 s": a breach is seen when its window
closes (at most window_s + grace_ms after the breach), so the budget left for delivery is 2 s;
the script prints the measured p50/p99 against it.

Run: .venv/bin/python benchmarks/alert_latency.py [--rounds N] [--bootstrap HOST:PORT]
Writes benchmarks/results/alert_latency.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped, unused-ignore]
from prometheus_client import CollectorRegistry

from schemas.aggregates import Scope
from schemas.events import Outcome
from schemas.rules import parse_rules
from schemas.wire import WireEvent
from stream_app.alerting.alertmanager_sink import AlertmanagerSink
from stream_app.alerting.dispatcher import AlertDispatcher
from stream_app.alerting.kafka_sink import KafkaAlertSink, alerts_topic
from stream_app.alerting.metrics import AlertingMetrics
from stream_app.alerting.placement import LOCAL_LEVELS, ScopeRuleRunner, wall_ms
from stream_app.core.accumulator import Accumulator
from stream_app.core.rules.engine import RuleEngine
from stream_app.core.rules.options import EngineOptions

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "alert_latency.json"
WINDOW_S = 10
GRACE_MS = 5_000
RULES = """
rules:
  - id: pool-errors
    name: ProxyPoolHighErrorRate
    kind: threshold
    metric: error_rate
    op: ">"
    threshold: 0.05
"""


@contextlib.contextmanager
def kafka(bootstrap: str | None) -> Iterator[str]:
    if bootstrap:
        yield bootstrap
        return
    sys.path.insert(0, str(ROOT))
    from tests.support.kafka_broker import KafkaBroker
    from tests.support.kafka_dist import kafka_distribution
    from tests.support.settings import HarnessSettings

    with tempfile.TemporaryDirectory(prefix="pwm-bench-kafka-") as work:
        broker = KafkaBroker(kafka_distribution(HarnessSettings()), Path(work))
        broker.start()
        try:
            yield broker.bootstrap
        finally:
            broker.close()


@contextlib.contextmanager
def alertmanager() -> Iterator[str]:
    sys.path.insert(0, str(ROOT))
    from tests.support.alertmanager import Alertmanager

    binary = shutil.which("prometheus-alertmanager") or "prometheus-alertmanager"
    with tempfile.TemporaryDirectory(prefix="pwm-bench-am-") as work:
        # The webhook receiver is never reached (nothing listens): only the API is measured.
        am = Alertmanager(Path(binary), Path(work), "http://127.0.0.1:9/hook")
        am.start()
        try:
            yield am.url
        finally:
            am.stop()


def window(pool: str, start_ms: int) -> list[Any]:
    acc = Accumulator()
    for i in range(100):
        acc.add(
            WireEvent(
                event_id=f"{pool}-{i}",
                ts_ms=start_ms + i,
                pool=pool,
                region="eu",
                outcome=Outcome.TIMEOUT if i % 2 else Outcome.SUCCESS,
                latency_ms=20.0,
                source_host="bench",
            )
        )
    return [acc.to_aggregate(Scope(pool=pool, region="eu"), start_ms, WINDOW_S)]


def summary(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    n = len(ordered)
    return {
        "n": n,
        "p50_ms": ordered[int(0.5 * (n - 1))],
        "p99_ms": ordered[int(0.99 * (n - 1))],
        "max_ms": ordered[-1],
    }


async def measure(bootstrap: str, am_url: str, rounds: int) -> dict[str, Any]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    metrics = AlertingMetrics(CollectorRegistry())
    kafka_sink = KafkaAlertSink(bootstrap, prefix)
    am_sink = AlertmanagerSink(am_url, metrics)
    dispatcher = AlertDispatcher([kafka_sink, am_sink], metrics)
    await dispatcher.start()
    engine = RuleEngine(
        parse_rules(RULES, "bench.yaml"), EngineOptions(window_s=WINDOW_S, levels=LOCAL_LEVELS)
    )
    runner = ScopeRuleRunner(engine, dispatcher, wall_ms)

    seen_kafka: dict[str, float] = {}
    seen_am: dict[str, float] = {}
    changed = asyncio.Event()
    consumer = AIOKafkaConsumer(
        alerts_topic(prefix), bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )

    async def consume() -> None:
        async for record in consumer:
            seen_kafka.setdefault(record.key.decode(), time.perf_counter())
            changed.set()

    async def poll_am() -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            while True:
                response = await client.get(f"{am_url}/api/v2/alerts")
                now = time.perf_counter()
                for alert in response.json():
                    if alert["fingerprint"] not in seen_am:
                        seen_am[alert["fingerprint"]] = now
                        changed.set()
                await asyncio.sleep(0.005)

    # Warm-up: the topic exists and the consumer is assigned before measuring.
    runner.on_windows_closed(window("warmup", 0), window_end_ms=WINDOW_S * 1000)
    await dispatcher.drain(timeout_s=60)
    await consumer.start()
    tasks = [asyncio.create_task(consume()), asyncio.create_task(poll_am())]
    async with asyncio.timeout(60):
        while len(seen_kafka) < 1 or len(seen_am) < 1:
            changed.clear()
            await changed.wait()

    kafka_ms: list[float] = []
    am_ms: list[float] = []
    for i in range(1, rounds + 1):
        pool = f"pool{i}"
        start_ms = i * WINDOW_S * 1000
        aggregates = window(pool, start_ms)
        closed = time.perf_counter()
        runner.on_windows_closed(aggregates, window_end_ms=start_ms + WINDOW_S * 1000)
        fp = engine.active_alerts()[-1].fingerprint
        async with asyncio.timeout(30):
            while fp not in seen_kafka or fp not in seen_am:
                changed.clear()
                await changed.wait()
        kafka_ms.append((seen_kafka[fp] - closed) * 1000)
        am_ms.append((seen_am[fp] - closed) * 1000)
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await consumer.stop()
    await dispatcher.close()
    return {"kafka": summary(kafka_ms), "alertmanager": summary(am_ms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    ns = parser.parse_args()
    with kafka(ns.bootstrap) as bootstrap, alertmanager() as am_url:
        result = asyncio.run(measure(bootstrap, am_url, ns.rounds))
    budget_ms = 2000.0
    report = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "rounds": ns.rounds,
        "window_s": WINDOW_S,
        "grace_ms": GRACE_MS,
        "window_close_to_alert": result,
        "delivery_budget_ms": budget_ms,
        "breach_to_alert_bound_p99_ms": WINDOW_S * 1000
        + GRACE_MS
        + max(result["kafka"]["p99_ms"], result["alertmanager"]["p99_ms"]),
        "target_ms": WINDOW_S * 1000 + GRACE_MS + budget_ms,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    for sink in ("kafka", "alertmanager"):
        s = result[sink]
        print(
            f"window close -> {sink:12s} p50 {s['p50_ms']:7.2f} ms  p99 {s['p99_ms']:7.2f} ms  "
            f"max {s['max_ms']:7.2f} ms  (n={s['n']})"
        )
    print(
        f"breach -> alert bound (window {WINDOW_S} s + grace {GRACE_MS} ms + p99 delivery): "
        f"{report['breach_to_alert_bound_p99_ms']:.0f} ms; target {report['target_ms']:.0f} ms"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
