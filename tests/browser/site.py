"""A seeded ``serve``-like site for the browser tests: the real API app (dashboard included)
under uvicorn on a loopback port, over a chDB database holding scripted history.

The app's clock is a :class:`MovableClock`, so a test can move "now" past the newest data (the
stale banner) without waiting. History, relative to the clock's start:

- residential and mobile x eu-west and us-east: 40 minutes of traffic up to now;
- isp/eu-west: traffic 60 to 50 minutes ago only (a silent scope: "no data" lately);
- mobile/us-east: an error spike 20 to 14 minutes ago (60 % timeouts), and the alert history
  rows a scope error-rate rule records for it (firing, then resolved; the demo test has the
  rule engine raise one for real);
- residential/eu-west: one proxy failing every request, which lifts its error rate far above
  the baseline a pool x region baseline rule (:data:`RULES`) learnt for it (saved as the rule
  engine saves its state).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import uvicorn

from api.app import create_app
from api.settings import ApiSettings
from schemas.alerts import AlertEvent, AlertStatus
from schemas.events import Outcome
from schemas.wire import WireEvent
from stream_app.alerting.engine_state import EngineStateStore
from stream_app.alerting.history import ClickHouseAlertHistory
from stream_app.storage.client import StorageClient
from stream_app.storage.queries import StorageQueries
from stream_app.storage.settings import StorageSettings
from stream_app.storage.sink import ClickHouseSink
from tests.storage.storage_builders import FlushBuilder, proxy_id
from tests.support.ports import free_port

MINUTE_MS = 60_000
POOLS = ("residential", "mobile")
REGIONS = ("eu-west", "us-east")
SILENT = ("isp", "eu-west")
SPIKE = ("mobile", "us-east")
SPIKE_MS = (-20 * MINUTE_MS, -14 * MINUTE_MS)
"""The incident, relative to the clock's start."""
BAD_PROXY = proxy_id("residential", "eu-west", 99)
RULES = """\
version: 1
rules:
  - id: scope-errors-baseline
    name: ScopeErrorsAboveUsual
    kind: baseline
    metric: error_rate
    level: pool_region
    baseline: {method: ewma, k_sigma: 3, min_abs_change: 0.02, warmup_windows: 10}
"""
LEARNT = {"method": "ewma", "mean": 0.03, "var": 0.0001, "n": 500}
"""The baseline saved for residential/eu-west: 3 % errors, one standard deviation 1 %."""
TOKEN = "dashboard-viewer-token-0123456789"
"""A read token, for the site whose reads need one."""


@dataclass
class MovableClock:
    """The app's clock: real time plus an offset a test may move."""

    offset_s: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset_s


@dataclass
class Site:
    """A running site: its URL, its clock, and when its history was seeded (epoch ms)."""

    url: str
    clock: MovableClock
    seeded_ms: int

    @staticmethod
    def now_ms() -> int:
        return time.time_ns() // 1_000_000


def history(now_ms: int, *, seed: int = 7, per_minute: int = 120) -> list[WireEvent]:
    rng = random.Random(seed)
    events: list[WireEvent] = []

    def add(pool: str, region: str, ts_ms: int, fail_share: float, proxy: str) -> None:
        failed = rng.random() < fail_share
        outcome = rng.choice((Outcome.TIMEOUT, Outcome.HTTP_ERROR)) if failed else Outcome.SUCCESS
        if failed and (pool, region) == SPIKE and fail_share > 0.5:
            outcome = Outcome.TIMEOUT
        events.append(
            WireEvent(
                event_id=f"e{len(events)}",
                ts_ms=ts_ms,
                pool=pool,
                region=region,
                outcome=outcome,
                latency_ms=rng.lognormvariate(4.6 if pool == "residential" else 5.0, 0.5),
                source_host="seed",
                proxy_id=proxy,
                status_code=(503 if outcome is Outcome.HTTP_ERROR else None) if failed else 200,
                bytes_in=rng.randrange(5_000),
                bytes_out=rng.randrange(800),
                attempts=1,
            )
        )

    for minute in range(40, 0, -1):
        base_ms = now_ms - minute * MINUTE_MS
        for pool in POOLS:
            for region in REGIONS:
                spike = SPIKE_MS[0] <= base_ms - now_ms < SPIKE_MS[1] and (pool, region) == SPIKE
                for i in range(per_minute):
                    ts_ms = base_ms + i * (MINUTE_MS // per_minute)
                    # every 4th request: 5 of every 20 consecutive ones, so each 10 s window
                    # (20 requests) holds the same share whatever "now" is aligned to
                    if (pool, region) == ("residential", "eu-west") and i % 4 == 0:
                        add(pool, region, ts_ms, 1.0, BAD_PROXY)
                        continue
                    proxy = proxy_id(pool, region, rng.randrange(12))
                    add(pool, region, ts_ms, 0.6 if spike else 0.03, proxy)
    for minute in range(60, 50, -1):
        base_ms = now_ms - minute * MINUTE_MS
        for i in range(per_minute):
            add(*SILENT, base_ms + i * (MINUTE_MS // per_minute), 0.02, proxy_id(*SILENT, i % 5))
    return events


def spike_alerts(now_ms: int) -> list[AlertEvent]:
    """What the scope error-rate rule recorded for the spike: firing, then resolved."""

    def at(offset_ms: int) -> datetime:
        return datetime.fromtimestamp((now_ms + offset_ms) / 1000, UTC)

    labels = {
        "alertname": "ScopeHighErrorRate",
        "rule_id": "scope-error-rate",
        "pool": SPIKE[0],
        "region": SPIKE[1],
        "severity": "page",
    }
    fired_ms, resolved_ms = SPIKE_MS[0] + 40_000, SPIKE_MS[1] + 40_000
    common = {
        "labels": labels,
        "annotations": {
            "summary": "Error rate 60.0% in mobile/us-east (above 15%)",
            "next_steps": "1. Check which outcomes dominate in mobile/us-east.",
        },
        "starts_at": at(fired_ms),
        "value": 0.6,
        "threshold": 0.15,
        "window_start_ms": now_ms + fired_ms - 10_000,
        "window_end_ms": now_ms + fired_ms,
    }
    return [
        AlertEvent(status=AlertStatus.FIRING, ends_at=None, **common),
        AlertEvent(status=AlertStatus.RESOLVED, ends_at=at(resolved_ms), **common),
    ]


def seed(storage: StorageSettings, client: StorageClient, now_ms: int) -> None:
    sink = ClickHouseSink(client, storage)
    builder = FlushBuilder(source="requests")
    events = history(now_ms)
    for i in range(0, len(events), 5_000):
        sink.write(builder.flush(events[i : i + 5_000]))
    ClickHouseAlertHistory(client, storage.database).write(spike_alerts(now_ms))
    baseline = {"rule_id": "scope-errors-baseline", "scope": "pool_region|residential|eu-west|"}
    EngineStateStore(client, storage.database).save(
        "dashboard-scope-rules", now_ms, {"baselines": [{**baseline, "data": LEARNT}]}
    )


@contextmanager
def serve(
    storage: StorageSettings,
    client: StorageClient,
    *,
    seeded_ms: int,
    rules_path: Path | None = None,
    **api: object,
) -> Iterator[Site]:
    """The API app (with the dashboard) on a free loopback port until the block ends; its
    clock starts 2 s after ``seeded_ms`` (the end of the seeded history), then runs."""
    clock = MovableClock(offset_s=seeded_ms / 1000 + 2 - time.time())
    port = free_port()
    settings = ApiSettings.model_validate(
        {"host": "127.0.0.1", "port": port, "staleness_s": 300.0, "cache_ttl_s": 0, **api}
    )
    queries = StorageQueries(client, storage.database)
    app = create_app(settings, queries, rules_path=rules_path, clock_s=clock)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, name="dashboard-site", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API did not start within 30 s")
        time.sleep(0.02)
    try:
        yield Site(f"http://127.0.0.1:{port}", clock, seeded_ms)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
