"""Engine state: JSON round trips mid-scenario, bad snapshots, hot rule reloads."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest
from alerting_core_kit import LAG_MS, Scenario, agg, end_of, rules, threshold_rule

from schemas.events import Outcome
from schemas.rules import RuleSet
from stream_app.core.rules import EngineOutput, PipelineStatus, RuleEngine, StateError

POOLS = ["p0", "p1", "p2", "p3"]
REGIONS = ["eu", "us"]


def mixed_rules() -> RuleSet:
    silence_from = datetime.fromtimestamp(end_of(30) / 1000, tz=UTC).isoformat()
    silence_to = datetime.fromtimestamp(end_of(45) / 1000, tz=UTC).isoformat()
    return rules(
        json.dumps(
            {
                "grouping": {"group_wait_s": 15, "group_interval_s": 40, "resend_interval_s": 25},
                "pipeline_health": {"max_lag_ms": 30_000, "for_s": 10},
                "silences": [
                    {
                        "id": "p3",
                        "matchers": ['pool="p3"'],
                        "starts_at": silence_from,
                        "ends_at": silence_to,
                    }
                ],
                "rules": [
                    {
                        "id": "errors",
                        "name": "ErrorRate",
                        "kind": "threshold",
                        "metric": "error_rate",
                        "op": ">",
                        "threshold": 0.1,
                        "for_s": 20,
                        "keep_firing_for_s": 20,
                    },
                    {
                        "id": "region-p95",
                        "name": "RegionSlow",
                        "kind": "threshold",
                        "metric": "latency_p95_ms",
                        "op": ">",
                        "threshold": 400,
                        "level": "region",
                        "for_windows": 2,
                    },
                    {
                        "id": "anomaly",
                        "name": "PoolAnomaly",
                        "kind": "baseline",
                        "metric": "outcome_rate",
                        "outcome": "timeout",
                        "level": "pool",
                        "baseline": {"alpha": 0.2, "min_abs_change": 0.05, "warmup_windows": 10},
                    },
                    {
                        "id": "silent",
                        "name": "PoolSilent",
                        "kind": "absence",
                        "level": "pool",
                        "absence": {"windows": 3},
                    },
                ],
            }
        )
    )


def scenario_step(engine: RuleEngine, i: int, rng: random.Random) -> list[EngineOutput]:
    aggs = []
    for pool in POOLS:
        if pool == "p2" and 25 <= i < 40:
            continue
        for region in REGIONS:
            errors = rng.randint(0, 6)
            if (pool == "p1" and 15 <= i < 28) or (pool == "p3" and 28 <= i < 50):
                errors = 30
            timeouts = 20 if pool == "p0" and 35 <= i < 40 else 0
            slow = region == "us" and 55 <= i < 62
            aggs.append(
                agg(
                    pool,
                    region,
                    i,
                    errors=max(errors, timeouts),
                    error_outcome=Outcome.TIMEOUT if timeouts else Outcome.HTTP_ERROR,
                    latency_ms=900.0 if slow else 120.0,
                )
            )
    lag = 90_000 if 64 <= i < 70 else 0
    outs = [
        engine.set_pipeline_status(
            PipelineStatus(lag_ms=lag, sink_ok=True, watermark_ms=end_of(i)),
            now_ms=end_of(i) + LAG_MS,
        ),
        engine.evaluate_window(aggs, window_end_ms=end_of(i), now_ms=end_of(i) + LAG_MS),
        engine.tick(end_of(i) + 7_000),
    ]
    return outs


def record(outs: list[EngineOutput]) -> list[object]:
    return [
        (
            [e.model_dump(mode="json") for e in out.events],
            [e.model_dump(mode="json") for e in out.resends],
            [
                (n.group_key, n.status.value, [a.model_dump(mode="json") for a in n.alerts])
                for n in out.notifications
            ],
        )
        for out in outs
    ]


def run(restart_every: int | None) -> tuple[list[object], dict[str, object]]:
    rule_set = mixed_rules()
    engine = RuleEngine(rule_set)
    rng = random.Random(42)
    log: list[object] = []
    for i in range(80):
        if restart_every and i and i % restart_every == 0:
            saved = json.loads(json.dumps(engine.snapshot()))
            engine = RuleEngine(rule_set, state=saved)
        log.extend(record(scenario_step(engine, i, rng)))
    return log, engine.snapshot()


def test_state_round_trips_mid_scenario_with_identical_results() -> None:
    baseline_log, final = run(restart_every=None)
    fired = [e for entry in baseline_log for e in entry[0] if e["status"] == "firing"]  # type: ignore[index]
    rule_ids = {e["labels"]["rule_id"] for e in fired}
    # the scenario exercises every rule kind and the pipeline alert
    assert rule_ids == {"errors", "region-p95", "anomaly", "silent", "pipeline-health"}
    for every in (1, 7, 13):
        log, snapshot = run(restart_every=every)
        assert log == baseline_log
        assert snapshot == final


def test_restored_engine_continues_pending_and_firing_alerts() -> None:
    text = threshold_rule(for_s=30)
    sc = Scenario.of(text)
    sc.window(0, [agg("a", "eu", 0, errors=50)])
    sc.window(1, [agg("a", "eu", 1, errors=50)])
    restored = Scenario(RuleEngine(rules(text), state=json.loads(json.dumps(sc.engine.snapshot()))))
    restored.window(2, [agg("a", "eu", 2, errors=50)])
    assert [i for i, _ in restored.fired()] == [2]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.update(version=2),
        lambda s: s.update(alerts=[{"rule_id": "x"}]),
        lambda s: s.update(
            absence=[{"rule_id": "x", "scope": "bogus", "last_seen_end_ms": 1, "silent_windows": 0}]
        ),
        lambda s: s.update(baselines=[{"rule_id": "x", "scope": "pool|a||", "data": {}}]),
        lambda s: s.update(groups=[{"key": "k"}]),
        lambda s: s.update(unexpected=1),
    ],
)
def test_invalid_state_is_refused(mutate: object) -> None:
    engine = RuleEngine(rules(threshold_rule()))
    state = engine.snapshot()
    mutate(state)  # type: ignore[operator]
    with pytest.raises(StateError):
        RuleEngine(rules(threshold_rule()), state=state)


def test_removed_rule_resolves_its_alerts_and_relabelled_rule_refires() -> None:
    sc = Scenario.of(threshold_rule(for_s=0))
    sc.window(0, [agg("a", "eu", 0, errors=50)])
    (first,) = [e for _, e in sc.fired()]

    out = sc.engine.replace_rules(rules(threshold_rule(for_s=0, severity="info")), now_ms=1)
    (resolved,) = out.events
    assert resolved.fingerprint == first.fingerprint
    assert resolved.status.value == "resolved"
    sc.window(1, [agg("a", "eu", 1, errors=50)])
    (_, refired) = sc.fired()[-1]
    assert refired.labels["severity"] == "info"
    assert refired.fingerprint != first.fingerprint

    out = sc.engine.replace_rules(rules(threshold_rule(id="other", for_s=0)), now_ms=2)
    assert [e.fingerprint for e in out.events] == [refired.fingerprint]
    assert sc.engine.active_alerts() == []


def test_threshold_change_keeps_the_alert() -> None:
    sc = Scenario.of(threshold_rule(for_s=0))
    sc.window(0, [agg("a", "eu", 0, errors=50)])
    out = sc.engine.replace_rules(rules(threshold_rule(for_s=0, threshold=0.4)), now_ms=1)
    assert out.events == []
    sc.window(1, [agg("a", "eu", 1, errors=50)])
    assert len(sc.events) == 1
    sc.window(2, [agg("a", "eu", 2, errors=30)])  # 30 % is fine under the new threshold
    assert [e.status.value for _, e in sc.events] == ["firing", "resolved"]


def test_disabled_rule_stops_evaluating() -> None:
    sc = Scenario.of(threshold_rule(for_s=0))
    sc.engine.replace_rules(rules(threshold_rule(for_s=0, enabled=False)), now_ms=0)
    sc.window(0, [agg("a", "eu", 0, errors=50)])
    assert sc.events == []
