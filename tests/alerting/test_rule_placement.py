"""Evaluation placement: per-scope rules as windows close in the owning worker; fleet-wide
rules once per window from ClickHouse, on the leader only, with state handed over on failover."""

from __future__ import annotations

import asyncio
import contextlib
import itertools

import pytest
from alerting_chdb import full_database
from alerting_waits import wait_until

from schemas.aggregates import Scope
from schemas.alerts import AlertEvent, AlertStatus
from schemas.events import Outcome
from schemas.rules import RuleSet, parse_rules
from schemas.wire import WireEvent
from stream_app.alerting.engine_state import EngineStateStore
from stream_app.alerting.placement import (
    LOCAL_LEVELS,
    AlwaysLeader,
    FleetRuleRunner,
    ScopeRuleRunner,
    wall_ms,
)
from stream_app.alerting.window_reader import ClickHouseWindowReader
from stream_app.core.accumulator import Accumulator
from stream_app.core.contributions import Contribution, Flush, ScopeKey, SourceRange
from stream_app.core.rules.engine import RuleEngine
from stream_app.core.rules.grouping import Notification
from stream_app.core.rules.options import EngineOptions
from stream_app.storage.client import StorageClient
from stream_app.storage.queries import StorageQueries
from stream_app.storage.settings import StorageSettings
from stream_app.storage.sink import ClickHouseSink

WINDOW_S = 10
GRACE_MS = 2_000
DELAY_MS = 1_000
T0 = 1_800_000_000_000  # a window boundary (ms)
RULES = """
rules:
  - id: fleet-errors
    name: FleetHighErrorRate
    level: fleet
    kind: threshold
    metric: error_rate
    op: ">"
    threshold: 0.2
  - id: pool-errors
    name: PoolHighErrorRate
    kind: threshold
    metric: error_rate
    op: ">"
    threshold: 0.4
"""
_offsets = itertools.count()


class Recorder:
    """Collects what a runner publishes (the dispatcher's publish interface)."""

    def __init__(self) -> None:
        self.events: list[AlertEvent] = []
        self.notifications: list[Notification] = []

    def publish(self, event: AlertEvent) -> None:
        self.events.append(event)

    def publish_notification(self, notification: Notification) -> None:
        self.notifications.append(notification)


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


class Switch:
    def __init__(self, leader: bool) -> None:
        self.leader = leader

    def is_leader(self) -> bool:
        return self.leader


def accumulator(pool: str, requests: int, errors: int, ts_ms: int) -> Accumulator:
    acc = Accumulator()
    for i in range(requests):
        outcome = Outcome.TIMEOUT if i < errors else Outcome.SUCCESS
        acc.add(
            WireEvent(
                event_id=f"{pool}-{ts_ms}-{i}",
                ts_ms=ts_ms,
                pool=pool,
                region="eu",
                outcome=outcome,
                latency_ms=10.0 + i,
                source_host="host-1",
                status_code=None if outcome is Outcome.TIMEOUT else 200,
            )
        )
    return acc


def write_window(sink: ClickHouseSink, end_ms: int, errors: dict[str, tuple[int, int]]) -> None:
    """Store one window: pool -> (requests, errors), as a worker's flush would."""
    start_ms = end_ms - WINDOW_S * 1000
    offset = next(_offsets) * 1000
    flush = Flush(
        scopes=[
            Contribution(
                ScopeKey(pool, "eu"), start_ms, WINDOW_S, accumulator(pool, n, e, start_ms)
            )
            for pool, (n, e) in errors.items()
        ],
        ranges=[SourceRange("placement-test", 0, offset, offset + 999)],
    )
    sink.write(flush)


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> tuple[StorageClient, StorageSettings]:
    return full_database(tmp_path_factory.mktemp("chdb-placement"))


def fleet_runner(
    storage: tuple[StorageClient, StorageSettings],
    rules: RuleSet,
    publisher: Recorder,
    clock: Clock,
    leader: Switch | AlwaysLeader,
    *,
    state_name: str,
    max_catch_up_windows: int = 6,
) -> FleetRuleRunner:
    client, settings = storage
    return FleetRuleRunner(
        rules,
        EngineOptions(window_s=WINDOW_S),
        publisher,
        ClickHouseWindowReader(StorageQueries(client, settings.database)),
        leader,
        grace_ms=GRACE_MS,
        evaluation_delay_ms=DELAY_MS,
        max_catch_up_windows=max_catch_up_windows,
        state_store=EngineStateStore(client, settings.database),
        state_name=state_name,
        clock_ms=clock,
    )


def settle(end_ms: int) -> int:
    return end_ms + GRACE_MS + DELAY_MS


async def test_fleet_rules_read_clickhouse_once_per_window(
    storage: tuple[StorageClient, StorageSettings],
) -> None:
    client, settings = storage
    sink = ClickHouseSink(client, settings)
    rules = parse_rules(RULES, "rules.yaml")
    base = T0
    # Two workers' pools: a at 50% errors, b at 0%: fleet 25% > 20%; pool a (per-scope, 50%)
    # must NOT be evaluated by the fleet runner.
    for k in range(1, 4):
        write_window(sink, base + k * 10_000, {"a": (100, 50), "b": (100, 0)})
    clock = Clock(settle(base + 10_000) - 1)
    out = Recorder()
    runner = fleet_runner(
        storage, rules, out, clock, AlwaysLeader(), state_name="t1", max_catch_up_windows=1
    )
    assert await runner.evaluate_due() == 0  # window 1 has not settled yet
    assert runner.last_window_end_ms == base  # (the previous, empty window was)
    clock.now_ms += 1
    assert await runner.evaluate_due() == 1
    (fired,) = out.events
    assert fired.status is AlertStatus.FIRING
    assert fired.labels == {
        "alertname": "FleetHighErrorRate",
        "severity": "warning",
        "rule_id": "fleet-errors",
    }
    assert fired.value == pytest.approx(0.25)
    assert fired.window_end_ms == base + 10_000
    for k in (2, 3):
        clock.now_ms = settle(base + k * 10_000)
        assert await runner.evaluate_due() == 0  # still firing: no new event
        assert runner.windows_evaluated == k + 1
    assert await runner.evaluate_due() == 0  # nothing new: no window evaluated twice
    assert runner.windows_evaluated == 4
    assert runner.last_window_end_ms == base + 30_000
    # Recovery: the fleet error rate drops; the alert resolves.
    write_window(sink, base + 40_000, {"a": (100, 10), "b": (100, 0)})
    clock.now_ms = settle(base + 40_000)
    assert await runner.evaluate_due() == 1
    assert out.events[-1].status is AlertStatus.RESOLVED
    assert out.events[-1].fingerprint == fired.fingerprint


async def test_failover_restores_state_without_duplicates(
    storage: tuple[StorageClient, StorageSettings],
) -> None:
    client, settings = storage
    sink = ClickHouseSink(client, settings)
    rules = parse_rules(RULES, "rules.yaml")
    base = T0 + 3_600_000
    for k in range(1, 7):
        write_window(sink, base + k * 10_000, {"a": (100, 60), "b": (100, 0)})
    clock = Clock(settle(base + 20_000))
    published = Recorder()  # both workers publish to the same topic
    first, second = Switch(True), Switch(False)
    worker_1 = fleet_runner(storage, rules, published, clock, first, state_name="t2")
    worker_2 = fleet_runner(storage, rules, published, clock, second, state_name="t2")
    await worker_1.evaluate_due()
    await worker_2.evaluate_due()  # not leader: evaluates nothing
    assert [e.status for e in published.events] == [AlertStatus.FIRING]
    assert worker_2.windows_evaluated == 0

    # The leader dies; the other worker takes over with the saved state.
    first.leader, second.leader = False, True
    clock.now_ms = settle(base + 60_000)
    await worker_1.evaluate_due()
    await worker_2.evaluate_due()
    assert worker_2.restores == 1
    assert [e.status for e in published.events] == [AlertStatus.FIRING]  # no re-fire
    assert worker_2.windows_evaluated == 4  # windows 3..6, none twice
    assert worker_1.last_window_end_ms == base + 20_000

    write_window(sink, base + 70_000, {"a": (100, 0), "b": (100, 0)})
    clock.now_ms = settle(base + 70_000)
    await worker_2.evaluate_due()
    assert [e.status for e in published.events] == [AlertStatus.FIRING, AlertStatus.RESOLVED]


def test_scope_runner_evaluates_closed_windows_of_its_pools() -> None:
    rules = parse_rules(RULES, "rules.yaml")
    engine = RuleEngine(rules, EngineOptions(window_s=WINDOW_S, levels=LOCAL_LEVELS))
    out = Recorder()
    clock = Clock(T0)
    runner = ScopeRuleRunner(engine, out, clock)
    end = T0 + 10_000
    aggregates = [
        accumulator("a", 100, 50, T0).to_aggregate(Scope(pool="a", region="eu"), T0, WINDOW_S),
        accumulator("b", 100, 0, T0).to_aggregate(Scope(pool="b", region="eu"), T0, WINDOW_S),
    ]
    clock.now_ms = end + GRACE_MS
    assert runner.on_windows_closed(aggregates, window_end_ms=end) == 1
    (event,) = out.events
    # The pool x region rule fired for pool a; the fleet rule is not this runner's.
    assert event.labels["rule_id"] == "pool-errors"
    assert event.labels["pool"] == "a"
    # Hot reload through the runner: the rule is removed, its alert resolves.
    runner.replace_rules(parse_rules(RULES.split("  - id: pool-errors")[0], "rules.yaml"))
    assert [e.status for e in out.events] == [AlertStatus.FIRING, AlertStatus.RESOLVED]


async def test_fleet_runner_task_evaluates_as_windows_settle(
    storage: tuple[StorageClient, StorageSettings],
) -> None:
    """The embedded-mode task on the wall clock: 1 s windows, evaluated once they settle."""
    client, settings = storage
    sink = ClickHouseSink(client, settings)
    rules = parse_rules(RULES, "rules.yaml")
    now = wall_ms()
    end = now - now % 1000 + 2000  # a window that has not even started closing yet
    acc_a = accumulator("a", 100, 90, end - 1000)
    acc_b = accumulator("b", 100, 0, end - 1000)
    offset = next(_offsets) * 1000
    sink.write(
        Flush(
            scopes=[
                Contribution(ScopeKey("a", "eu"), end - 1000, 1, acc_a),
                Contribution(ScopeKey("b", "eu"), end - 1000, 1, acc_b),
            ],
            ranges=[SourceRange("placement-task", 0, offset, offset + 1)],
        )
    )
    out = Recorder()
    runner = FleetRuleRunner(
        rules,
        EngineOptions(window_s=1),
        out,
        ClickHouseWindowReader(StorageQueries(client, settings.database)),
        AlwaysLeader(),
        grace_ms=100,
        evaluation_delay_ms=100,
        max_catch_up_windows=1,
    )
    task = asyncio.create_task(runner.run())
    runner.start_ticks(max_sleep_s=0.2)
    try:
        await wait_until(
            lambda: runner.last_window_end_ms is not None and runner.last_window_end_ms >= end,
            timeout_s=15,
        )
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await runner.stop()
    fired = [e for e in out.events if e.window_end_ms == end]
    assert [e.labels["alertname"] for e in fired] == ["FleetHighErrorRate"]
    assert fired[0].value == pytest.approx(0.45)
