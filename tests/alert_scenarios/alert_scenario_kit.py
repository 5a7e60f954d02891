"""Alert scenarios in virtual time: simulator -> embedded pipeline -> rules -> delivery.

A :class:`ScenarioRun` drives a :class:`FleetSimulator` (scripted incidents) through the real
:class:`EmbeddedPipeline` (batch envelopes into ``process_record``, a ClickHouse sink on the
process's chDB engine) and the real :class:`EmbeddedAlerting` (per-scope and fleet rule runners,
dispatcher with the ClickHouse history sink, rules file watcher), one window at a time on a
virtual clock. What the dispatcher delivers is recorded by :class:`Recorder`, a real
:class:`~stream_app.alerting.dispatcher.AlertSink`.

Time: window ``k`` covers ``[T0 + k*w, T0 + (k+1)*w)``. ``advance_to(t_s)`` feeds, step by step,
the events delivered in the next window and moves the clock to that window's end; the pipeline
then closes every window whose end is at or before the watermark (``max event time - grace``),
i.e. the previous one. So the window ending at ``T0 + e`` is evaluated at virtual ``T0 + e + w``.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from schemas.alerts import AlertEvent, AlertStatus
from schemas.events import Outcome
from schemas.latency_buckets import bucket_key, quantile_from_counts
from schemas.wire import WireBatch, WireEvent, encode_batch
from stream_app.alerting.dispatcher import Accepts, Deliverable
from stream_app.alerting.metrics import AlertingMetrics
from stream_app.alerting.settings import AlertingSettings
from stream_app.core.contributions import Flush
from stream_app.core.rules.grouping import Notification
from stream_app.dead_letters import FileDeadLetters
from stream_app.embedded.alerting import EmbeddedAlerting
from stream_app.embedded.pipeline import EmbeddedPipeline
from stream_app.settings import PipelineSettings
from stream_app.simulator import FleetSimulator, Scenario, scenario_from_data
from stream_app.storage.client import StorageClient, get_client, open_chdb_path
from stream_app.storage.errors import SinkUnavailable
from stream_app.storage.migrate import Migrator
from stream_app.storage.settings import StorageSettings
from stream_app.storage.sink import ClickHouseSink, RejectedRow

T0 = 1_800_000_000_000
"""Scenario origin (epoch ms), a multiple of every window size used here."""
WINDOW_S = 10
GRACE_MS = 1_000
_ENVELOPE_EVENTS = 500


def at(seconds: float) -> int:
    """Epoch ms of ``seconds`` after the origin."""
    return T0 + round(seconds * 1000)


def scenario_database(base_dir: Path) -> tuple[StorageClient, StorageSettings]:
    """A fresh, fully migrated database on this process's chDB engine (one path per process:
    reuse the open one, isolate by database)."""
    path = open_chdb_path() or str(base_dir)
    settings = StorageSettings(dsn=f"chdb://{path}", database=f"scen_{uuid.uuid4().hex[:12]}")
    client = get_client(settings)
    Migrator(client, settings).migrate()
    return client, settings


def fleet_scenario(
    pools: dict[str, float],
    regions: Iterable[str] = ("eu",),
    *,
    incidents: Iterable[dict[str, Any]] = (),
    error_rate: float = 0.01,
    base_latency_ms: float = 100.0,
    proxies_per_region: int = 4,
    **pool_fields: Any,
) -> Scenario:
    """A flat fleet: ``pools`` (name -> requests/s over all regions) in ``regions`` (equal
    shares, equal base latency), in-order delivery, no diurnal shape."""
    return scenario_from_data(
        {
            "name": "alert-scenario",
            "fleet": {
                "regions": [{"name": r, "base_latency_ms": base_latency_ms} for r in regions],
                "pools": [
                    {
                        "name": name,
                        "rate_per_s": rate,
                        "error_rate": error_rate,
                        "proxies_per_region": proxies_per_region,
                        **pool_fields,
                    }
                    for name, rate in pools.items()
                ],
                "retry_fraction": 0.0,
            },
            "incidents": list(incidents),
        }
    )


class VirtualClock:
    """Epoch ms that only moves when the scenario says so."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


class Recorder:
    """A delivery sink that keeps what it is given (events, or grouped notifications)."""

    def __init__(self, name: str, accepts: Accepts) -> None:
        self._name = name
        self._accepts: Accepts = accepts
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

    @property
    def events(self) -> list[AlertEvent]:
        return [i for i in self.items if isinstance(i, AlertEvent)]

    @property
    def notifications(self) -> list[Notification]:
        return [i for i in self.items if isinstance(i, Notification)]


def transitions(events: Iterable[AlertEvent]) -> list[tuple[str, str, str, int, int | None]]:
    """(status, alertname, scope text, startsAt ms, endsAt ms) of each event, in order."""
    out = []
    for e in events:
        scope = "/".join(e.labels.get(k, "") for k in ("pool", "region"))
        ends = None if e.ends_at is None else round(e.ends_at.timestamp() * 1000)
        out.append(
            (
                e.status.value,
                e.labels["alertname"],
                scope,
                round(e.starts_at.timestamp() * 1000),
                ends,
            )
        )
    return out


def firing(events: Iterable[AlertEvent]) -> list[AlertEvent]:
    return [e for e in events if e.status is AlertStatus.FIRING]


async def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Return once ``predicate()`` holds; fail after ``timeout_s`` (wall clock)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.01)


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` in one step (a new inode: the watcher sees every version)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class OutageSink:
    """The real ClickHouse sink behind a switch: while ``down``, writes fail as retriable."""

    def __init__(self, inner: ClickHouseSink) -> None:
        self.inner = inner
        self.down = False
        self.refused = 0

    def write(self, flush: Flush) -> list[RejectedRow]:
        if self.down:
            self.refused += 1
            raise SinkUnavailable("storage outage (scenario)")
        return self.inner.write(flush)


class ScenarioRun:
    """One scenario through the real pipeline and alerting, on a virtual clock."""

    def __init__(
        self,
        scenario: Scenario,
        rules_yaml: str,
        tmp_path: Path,
        *,
        seed: int = 1,
        window_s: int = WINDOW_S,
        proxy_window_s: int = WINDOW_S,
        storage: tuple[StorageClient, StorageSettings] | None = None,
        name: str | None = None,
        start_s: int = 0,
    ) -> None:
        """``storage``/``name``/``start_s``: continue an earlier run (same database, same state
        names) from ``T0 + start_s``, as a restarted service would."""
        self.clock = VirtualClock(at(start_s))
        self.sim = FleetSimulator(scenario, seed=seed, origin_ms=T0)
        self.window_ms = window_s * 1000
        self.tmp_path = tmp_path
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.rules_path = tmp_path / "rules.yaml"
        write_atomically(self.rules_path, rules_yaml)
        self.client, self.storage = storage or scenario_database(tmp_path / "chdb")
        self.name = name or f"scenario-{uuid.uuid4().hex[:8]}"
        self.sink = OutageSink(ClickHouseSink(self.client, self.storage))
        self.pipeline = EmbeddedPipeline(
            PipelineSettings(
                window_s=window_s,
                grace_ms=GRACE_MS,
                proxy_window_s=proxy_window_s,
                idle_timeout_ms=60_000,
            ),
            self.sink,
            FileDeadLetters(tmp_path / "dead-letters.jsonl"),
            clock=self.clock,
            source=f"scenario-{uuid.uuid4().hex[:8]}",
        )
        self.events = Recorder("recorded-events", "events")
        self.notifications = Recorder("recorded-notifications", "notifications")
        self.registry = CollectorRegistry()
        self.alerting = EmbeddedAlerting(
            AlertingSettings(
                rules_file=self.rules_path,
                rules_poll_interval_s=0.05,
                data_dir=tmp_path,
                fleet_evaluation_delay_ms=0,
                retry_initial_backoff_s=0.01,
                retry_max_backoff_s=0.05,
            ),
            self.pipeline,
            storage=self.client,
            database=self.storage.database,
            rules_file=self.rules_path,
            metrics=AlertingMetrics(self.registry),
            sinks=[self.events, self.notifications],
            clock_ms=self.clock,
            name=self.name,
        )
        self._fed_until_ms = at(start_s)
        self.closed_ends: list[int] = []

    async def __aenter__(self) -> ScenarioRun:
        await self.alerting.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.alerting.close()

    def _feed(self, start_ms: int, end_ms: int) -> int:
        by_pool: dict[str, list[WireEvent]] = defaultdict(list)
        for event in self.sim.events_between(start_ms, end_ms):
            by_pool[event.pool].append(event)
        count = 0
        for pool, events in sorted(by_pool.items()):
            for i in range(0, len(events), _ENVELOPE_EVENTS):
                chunk = events[i : i + _ENVELOPE_EVENTS]
                batch = WireBatch(
                    batch_id=f"{pool}-{start_ms}-{i}",
                    source_host="scenario-host",
                    pool=pool,
                    sent_ms=end_ms,
                    events=chunk,
                )
                self.pipeline.process_record(encode_batch(batch), end_ms)
                count += len(chunk)
        return count

    async def step(self, *, wait_for_fleet: bool = True) -> None:
        """Feed the next window's events, move the clock to its end, close what is due and
        (unless told not to) wait until the fleet rules have evaluated those windows too."""
        start = self._fed_until_ms
        end = start + self.window_ms
        self._feed(start, end)
        self._fed_until_ms = end
        self.clock.now_ms = end
        closed = await self.pipeline.flush_and_close()
        ends = sorted({a.window_end_ms for a in closed})
        self.closed_ends.extend(ends)
        if ends and wait_for_fleet:
            fleet = self.alerting.fleet_runner
            await wait_until(
                lambda: (fleet.last_window_end_ms or 0) >= ends[-1],
                10.0,
                f"fleet rules to evaluate the window ending {ends[-1]}",
            )
        self.alerting.tick()

    async def advance_to(self, seconds: float) -> None:
        """Step until the clock reads ``T0 + seconds``."""
        while self.clock.now_ms < at(seconds):
            await self.step()

    async def delivered(self) -> None:
        """Wait until every published alert and notification has been delivered."""
        assert await self.alerting.dispatcher.drain(10.0), "alert delivery did not drain"

    def truth(self, start_s: float, end_s: float) -> list[WireEvent]:
        """Exactly the events of ``[T0 + start_s, T0 + end_s)`` (in-order delivery)."""
        return list(self.sim.events_between(at(start_s), at(end_s)))

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels or None)
        return 0.0 if value is None else value


def error_rate(events: Iterable[WireEvent]) -> float:
    """Share of non-successes among ``events``."""
    events = list(events)
    return sum(e.outcome is not Outcome.SUCCESS for e in events) / len(events)


def latency_quantile(events: Iterable[WireEvent], q: float) -> float | None:
    """The quantile the engine computes: from the shared log buckets of the latencies."""
    counts: dict[int, int] = defaultdict(int)
    for e in events:
        counts[bucket_key(e.latency_ms)] += 1
    return quantile_from_counts(dict(counts), q)
