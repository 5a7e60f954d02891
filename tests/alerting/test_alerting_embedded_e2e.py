"""End to end in one process: events -> embedded pipeline -> closed windows -> per-scope rules
-> dispatcher -> webhook (real HTTP) and /metrics gauges; storage in embedded ClickHouse."""

from __future__ import annotations

import pytest
from alert_webhook_receiver import WebhookReceiver
from alerting_chdb import full_database
from prometheus_client import CollectorRegistry, generate_latest

from api.prometheus import WindowAggregateCollector
from schemas.events import Outcome
from schemas.rules import parse_rules
from schemas.wire import WireEvent, encode_event
from stream_app.alerting.dispatcher import AlertDispatcher
from stream_app.alerting.metrics import AlertingMetrics
from stream_app.alerting.placement import LOCAL_LEVELS, ScopeRuleRunner
from stream_app.alerting.webhook_sink import WebhookSink
from stream_app.core.rules.engine import RuleEngine
from stream_app.core.rules.options import EngineOptions
from stream_app.dead_letters import FileDeadLetters
from stream_app.embedded.pipeline import EmbeddedPipeline
from stream_app.settings import PipelineSettings
from stream_app.storage.sink import ClickHouseSink

RULES = """
rules:
  - id: pool-timeouts
    name: PoolTimeouts
    kind: threshold
    metric: outcome_rate
    outcome: timeout
    op: ">"
    threshold: 0.3
"""
T0 = 1_800_000_000_000


async def test_breach_in_the_pipeline_reaches_the_webhook_and_metrics(
    receiver: WebhookReceiver,
    metrics: AlertingMetrics,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    client, settings = full_database(tmp_path_factory.mktemp("chdb-e2e"))
    clock = {"ms": T0}
    pipeline_settings = PipelineSettings(window_s=10, grace_ms=1_000, proxy_window_s=10)
    pipeline = EmbeddedPipeline(
        pipeline_settings,
        ClickHouseSink(client, settings),
        FileDeadLetters(tmp_path_factory.mktemp("dl") / "dead.jsonl"),
        clock=lambda: clock["ms"],
    )
    dispatcher = AlertDispatcher([WebhookSink(receiver.url)], metrics)
    await dispatcher.start()
    engine = RuleEngine(
        parse_rules(RULES, "rules.yaml"), EngineOptions(window_s=10, levels=LOCAL_LEVELS)
    )
    runner = ScopeRuleRunner(engine, dispatcher, lambda: clock["ms"])
    collector = WindowAggregateCollector(clock_s=lambda: clock["ms"] / 1000)
    pipeline.add_listener(runner.listener)
    pipeline.add_listener(collector.listener)

    # Window [T0, T0+10s): pool "bad" has 50% timeouts, pool "good" none.
    for i in range(100):
        for pool in ("bad", "good"):
            outcome = Outcome.TIMEOUT if pool == "bad" and i % 2 else Outcome.SUCCESS
            ev = WireEvent(
                event_id=f"{pool}-{i}",
                ts_ms=T0 + i * 50,
                pool=pool,
                region="eu",
                outcome=outcome,
                latency_ms=30.0 + i,
                source_host="h1",
                status_code=200 if outcome is Outcome.SUCCESS else None,
            )
            pipeline.process_record(encode_event(ev), clock["ms"])
    # Time passes past the window end + grace: the window closes.
    clock["ms"] = T0 + 10_000 + 1_000 + pipeline_settings.idle_timeout_ms + 1
    closed = await pipeline.flush_and_close()
    assert {a.scope.pool for a in closed} == {"bad", "good"}

    await receiver.wait_for(lambda r: len(r.bodies) == 1, timeout_s=10)
    (body,) = receiver.bodies
    assert body["status"] == "firing"
    assert body["labels"]["pool"] == "bad"
    assert body["labels"]["rule_id"] == "pool-timeouts"
    assert body["value"] == pytest.approx(0.5)
    assert body["window_end_ms"] == T0 + 10_000

    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    assert 'proxywhirl_window_outcome_ratio{outcome="timeout",pool="bad",region="eu"} 0.5' in text
    assert 'proxywhirl_window_requests{pool="good",region="eu"} 100.0' in text
    await dispatcher.close()
