"""Alert rules in the distributed runtime: two workers on a real broker, one alert per scope.

Both workers run the rules; per-scope rules evaluate in the worker holding the pool's partition
and the fleet rule on the elected leader only, so the ``<prefix>.alerts`` topic carries each
alert once. Then the worker holding the failing pool leaves: the other takes the partition over
with its saved engine state, so the alert neither fires again nor is forgotten (it resolves
when the pool recovers, which only an engine that knew it was firing can announce).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from worker_kit import kafka_producer, read_topic, unique_prefix, wait_until, worker_settings

from producer import MetricsProducer
from stream_app.alerting.settings import AlertingSettings
from stream_app.storage.settings import StorageSettings
from stream_app.worker.service import WorkerService

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PARTITIONS = 6
POOLS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot")
REGIONS = ("eu", "us")
FAILING = "bravo"

RULES = """\
groups:
  - name: worker-test
    rules:
      - id: scope-errors
        name: ScopeErrorsHigh
        kind: threshold
        metric: error_rate
        op: ">"
        threshold: 0.3
        min_requests: 10
      - id: fleet-errors
        name: FleetErrorsHigh
        level: fleet
        kind: threshold
        metric: error_rate
        op: ">"
        threshold: 0.04
        min_requests: 50
"""


class Traffic:
    """Events stamped with the wall clock, every pool and region, ``FAILING`` failing or not."""

    def __init__(self, producer: MetricsProducer) -> None:
        self.producer = producer
        self.failing = True
        self.sent = 0

    async def run(self, stop: asyncio.Event) -> None:
        tick = 0
        while not stop.is_set():
            for pool in POOLS:
                for region in REGIONS:
                    for i in range(4):  # 40 requests per scope and second
                        bad = pool == FAILING and self.failing and i % 2 == 0
                        self.producer.emit(
                            pool=pool,
                            region=region,
                            outcome="timeout" if bad else "success",
                            status_code=None if bad else 200,
                            latency_ms=2000.0 if bad else 50.0 + tick % 7,
                        )
                        self.sent += 1
            tick += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)


def _alerts(records: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in records]


def _firing_owner(services: list[WorkerService]) -> WorkerService:
    for service in services:
        assert service.alerting is not None
        for rules in service.alerting.partitions.values():
            for alert in rules.runner.engine.snapshot()["alerts"]:
                if f"|{FAILING}|" in alert["scope"] and alert["phase"] == "firing":
                    return service
    raise AssertionError("no worker holds the firing alert")


async def test_two_workers_alert_once_and_hand_the_alert_over(
    kafka_bootstrap: str, worker_storage: StorageSettings, tmp_path: Path
) -> None:
    prefix = unique_prefix("alerting")
    settings = worker_settings(kafka_bootstrap, prefix, partitions=PARTITIONS)
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES)
    alerting = AlertingSettings(
        rules_file=rules_file,
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=prefix,
        data_dir=tmp_path,
        fleet_evaluation_delay_ms=500,
    )
    services = [
        WorkerService(settings, worker_storage, alerting=alerting),
        WorkerService(settings, worker_storage, alerting=alerting),
    ]
    producer, _ = kafka_producer(kafka_bootstrap, prefix)
    traffic = Traffic(producer)
    stop = asyncio.Event()
    streaming: asyncio.Task[None] | None = None
    alerts_topic = f"{prefix}.alerts"
    seen: list[dict[str, Any]] = []

    async def alerts_seen(predicate: Any) -> bool:
        try:  # a read that stalls is retried: the wait's own deadline decides
            async with asyncio.timeout(15):
                records = await read_topic(kafka_bootstrap, alerts_topic, idle_ms=300)
        except TimeoutError:
            return False
        seen[:] = _alerts(records)
        return bool(predicate(seen))

    def named(name: str, status: str | None = None) -> Any:
        return lambda alerts: [
            a
            for a in alerts
            if a["labels"]["alertname"] == name and (status is None or a["status"] == status)
        ]

    try:
        for service in services:
            await service.start()

        async def split() -> bool:
            held = [len(s.worker.partitions) for s in services if s.worker is not None]
            return sum(held) == PARTITIONS and all(held)

        await wait_until(split, timeout_s=90, what="the partitions split over both workers")
        streaming = asyncio.create_task(traffic.run(stop))
        scope_firing = named("ScopeErrorsHigh", "firing")
        await wait_until(
            lambda: alerts_seen(
                lambda a: len(scope_firing(a)) >= 2 and named("FleetErrorsHigh")(a)
            ),
            timeout_s=90,
            what="the failing pool's alerts (both regions) and the fleet alert",
        )
        owner = _firing_owner(services)
        other = next(s for s in services if s is not owner)
        assert other.alerting is not None
        restored_before = other.alerting.states_restored
        await owner.stop()  # its partitions, and the firing alert, move to the other worker
        # The takeover ends with the alert engines restored (a cycle cannot run before).
        await wait_until(
            lambda: _true(
                other.alerting is not None and len(other.alerting.partitions) == PARTITIONS
            ),
            timeout_s=90,
            what="the remaining worker holding every partition's alert engine",
        )
        assert other.alerting.states_restored > restored_before
        # Still failing for several more windows, now evaluated by the new owner.
        evaluated = other.alerting.windows_evaluated
        await wait_until(
            lambda: _true(
                other.alerting is not None and other.alerting.windows_evaluated > evaluated + 6
            ),
            timeout_s=60,
            what="more windows evaluated by the new owner",
        )
        traffic.failing = False
        await wait_until(
            lambda: alerts_seen(lambda a: len(named("ScopeErrorsHigh", "resolved")(a)) >= 2),
            timeout_s=90,
            what="the failing pool's alerts resolved by the new owner",
        )
    finally:
        stop.set()
        if streaming is not None:
            await asyncio.gather(streaming, return_exceptions=True)
        await asyncio.to_thread(producer.close, 10.0)
        for service in services:
            await service.stop()

    alerts = _alerts(await read_topic(kafka_bootstrap, alerts_topic, idle_ms=500))
    per_scope: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for alert in alerts:
        labels = alert["labels"]
        per_scope[(labels["alertname"], labels.get("pool", ""), labels.get("region", ""))].append(
            alert
        )
    scoped = {k: v for k, v in per_scope.items() if k[0] == "ScopeErrorsHigh"}
    assert set(scoped) == {("ScopeErrorsHigh", FAILING, r) for r in REGIONS}
    for key, events in scoped.items():
        starts = {a["starts_at"] for a in events if a["status"] == "firing"}
        story = [(a["status"], a["starts_at"], a["window_end_ms"], a["value"]) for a in events]
        assert len(starts) == 1, f"{key} fired more than once: {story}"
        assert [a["status"] for a in events][-1] == "resolved", key
    fleet = per_scope[("FleetErrorsHigh", "", "")]
    story = [(a["status"], a["starts_at"], a["window_end_ms"], a["value"]) for a in fleet]
    assert len({a["starts_at"] for a in fleet if a["status"] == "firing"}) == 1, story
    assert traffic.sent > 0


async def _true(value: bool) -> bool:
    return value
