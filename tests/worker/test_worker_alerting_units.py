"""WorkerAlerting without a broker: per-partition engines on a virtual clock, real chDB state.

Windows are handed in as the worker's cycle would (per partition); delivery goes to a recording
sink. Checked: breaches in two partitions become one notification; a partition that closes
windows without traffic still counts them for absence rules; an engine given up by one worker
and taken over by another continues (no second firing, the resolution comes from the new one).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from schemas.aggregates import LatencyHistogram, Scope, WindowAggregate
from schemas.alerts import AlertEvent, AlertStatus
from schemas.events import Outcome
from stream_app.alerting.dispatcher import Accepts, Deliverable
from stream_app.alerting.metrics import AlertingMetrics
from stream_app.alerting.placement import AlwaysLeader
from stream_app.alerting.settings import AlertingSettings
from stream_app.core.rules import PipelineStatus
from stream_app.core.rules.grouping import Notification
from stream_app.settings import PipelineSettings
from stream_app.storage.client import get_client
from stream_app.storage.migrate import Migrator
from stream_app.storage.settings import StorageSettings
from stream_app.worker.alerting import WorkerAlerting
from stream_app.worker.cycle import PartitionWindows

WINDOW_S = 10
START_MS = 1_800_000_000_000

RULES = """\
grouping: {group_by: [alertname], group_wait_s: 5, group_interval_s: 30}
groups:
  - name: unit
    rules:
      - id: scope-errors
        name: ScopeErrorsHigh
        kind: threshold
        metric: error_rate
        op: ">"
        threshold: 0.3
        min_requests: 5
      - id: scope-silent
        name: ScopeSilent
        kind: absence
        absence: {windows: 3}
"""


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


class Recorder:
    def __init__(self, name: str, accepts: Accepts) -> None:
        self._name = name
        self._accepts = accepts
        self.items: list[Deliverable] = []

    @property
    def name(self) -> str:
        return self._name

    @property
    def accepts(self) -> Accepts:
        return self._accepts

    async def start(self) -> None:
        return None

    async def deliver(self, item: Deliverable) -> None:
        self.items.append(item)

    async def close(self) -> None:
        return None

    def events(self) -> list[AlertEvent]:
        return [i for i in self.items if isinstance(i, AlertEvent)]

    def notifications(self) -> list[Notification]:
        return [i for i in self.items if isinstance(i, Notification)]


def window(pool: str, end_ms: int, *, errors: int, requests: int = 20) -> WindowAggregate:
    return WindowAggregate(
        scope=Scope(pool=pool, region="eu"),
        window_start_ms=end_ms - WINDOW_S * 1000,
        window_end_ms=end_ms,
        window_s=WINDOW_S,
        requests=requests,
        successes=requests - errors,
        outcomes={Outcome.SUCCESS: requests - errors, Outcome.TIMEOUT: errors},
        status_classes={"2xx": requests - errors},
        latency=LatencyHistogram(buckets={}, count=0, sum_ms=0.0, min_ms=None, max_ms=None),
        bytes_in=0,
        bytes_out=0,
        attempts=requests,
        distinct_proxies=1,
        late_events=0,
    )


@pytest.fixture
def storage(worker_storage: StorageSettings) -> StorageSettings:
    Migrator(get_client(worker_storage), worker_storage).migrate()
    return worker_storage


class Rig:
    """One worker's alerting on the shared database, with its own sinks."""

    def __init__(self, storage: StorageSettings, rules_file: Path, clock: Clock) -> None:
        self.events = Recorder("events", "events")
        self.groups = Recorder("groups", "notifications")
        self.clock = clock
        self.alerting = WorkerAlerting(
            AlertingSettings(rules_file=rules_file, history=False, data_dir=rules_file.parent),
            PipelineSettings(window_s=WINDOW_S, proxy_window_s=60, grace_ms=0),
            rules_file=rules_file,
            app_id="unit",
            storage=get_client(storage),
            database=storage.database,
            leader=AlwaysLeader(),
            status=lambda partition: PipelineStatus(watermark_ms=clock()),
            metrics=AlertingMetrics(CollectorRegistry()),
            sinks=[self.events, self.groups],
            clock_ms=clock,
        )

    def close(self, partition: int, *windows: WindowAggregate, through_ms: int) -> None:
        self.alerting.on_partition_windows(partition, PartitionWindows(list(windows), through_ms))

    async def delivered(self) -> None:
        assert await self.alerting.dispatcher.drain(10.0), "alert delivery did not drain"


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return path


async def test_breaches_in_two_partitions_make_one_notification(
    storage: StorageSettings, rules_file: Path
) -> None:
    clock = Clock(START_MS)
    rig = Rig(storage, rules_file, clock)
    await rig.alerting.start()
    try:
        await rig.alerting.partitions_assigned({0, 1})
        end = START_MS
        clock.now_ms = end + 100
        rig.close(0, window("alpha", end, errors=10), through_ms=end)
        rig.close(1, window("bravo", end, errors=12), through_ms=end)
        clock.now_ms = end + 6_000  # past the group wait
        assert rig.alerting.flush_notifications() == 1
        await rig.delivered()
    finally:
        await rig.alerting.close()
    firing = [e for e in rig.events.events() if e.status is AlertStatus.FIRING]
    assert sorted(e.labels["pool"] for e in firing) == ["alpha", "bravo"]
    (notification,) = rig.groups.notifications()
    assert sorted(a.labels["pool"] for a in notification.alerts) == ["alpha", "bravo"]


async def test_windows_closed_without_traffic_count_for_absence(
    storage: StorageSettings, rules_file: Path
) -> None:
    clock = Clock(START_MS)
    rig = Rig(storage, rules_file, clock)
    await rig.alerting.start()
    try:
        await rig.alerting.partitions_assigned({3})
        rig.close(3, window("charlie", START_MS, errors=0), through_ms=START_MS)
        # The pool goes silent; the partition's watermark still closes windows (idle clock).
        for n in (1, 2):
            clock.now_ms = START_MS + n * 10_000
            rig.close(3, through_ms=clock.now_ms)
        await rig.delivered()
        assert not rig.events.events()  # two silent windows: not yet
        clock.now_ms = START_MS + 30_000
        rig.close(3, through_ms=clock.now_ms + 5_000)  # not a window boundary: rounded down
        await rig.delivered()
    finally:
        await rig.alerting.close()
    (silent,) = rig.events.events()
    assert (silent.labels["alertname"], silent.labels["pool"]) == ("ScopeSilent", "charlie")
    assert silent.status is AlertStatus.FIRING
    assert rig.alerting.windows_evaluated == 4


async def test_a_firing_alert_moves_with_its_partition(
    storage: StorageSettings, rules_file: Path
) -> None:
    clock = Clock(START_MS)
    first = Rig(storage, rules_file, clock)
    second = Rig(storage, rules_file, clock)
    await first.alerting.start()
    await second.alerting.start()
    try:
        await first.alerting.partitions_assigned({5})
        first.close(5, window("delta", START_MS, errors=15), through_ms=START_MS)
        await first.delivered()
        await first.alerting.partitions_revoked({5})  # saved before it may move
        assert not first.alerting.partitions

        await second.alerting.partitions_assigned({5})
        assert second.alerting.states_restored == 1
        end = START_MS + 10_000
        clock.now_ms = end
        second.close(5, window("delta", end, errors=15), through_ms=end)  # still failing
        end += 10_000
        clock.now_ms = end
        second.close(5, window("delta", end, errors=0), through_ms=end)  # recovered
        await second.delivered()
    finally:
        await first.alerting.close()
        await second.alerting.close()
    assert [e.status for e in first.events.events()] == [AlertStatus.FIRING]
    assert [e.status for e in second.events.events()] == [AlertStatus.RESOLVED]
    assert second.events.events()[0].starts_at == first.events.events()[0].starts_at


async def test_a_lost_partition_is_dropped_unsaved(
    storage: StorageSettings, rules_file: Path
) -> None:
    clock = Clock(START_MS)
    rig = Rig(storage, rules_file, clock)
    await rig.alerting.start()
    try:
        await rig.alerting.partitions_assigned({7})
        rig.close(7, window("echo", START_MS, errors=15), through_ms=START_MS)
        await rig.alerting.partitions_lost({7})
        assert not rig.alerting.partitions
        assert rig.alerting.states_saved == 0
        await rig.alerting.partitions_assigned({7})  # back, from the (absent) saved state
        assert rig.alerting.states_restored == 0
    finally:
        await rig.alerting.close()
