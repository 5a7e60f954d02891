"""Smaller engine contracts: comparisons, levels per instance, baseline documents, relabels."""

from __future__ import annotations

import json
import random

import pytest
from alerting_core_kit import LAG_MS, WINDOW_MS, Scenario, agg, end_of, rules, threshold_rule
from pydantic import ValidationError

from schemas.alerts import AlertStatus
from schemas.rules import BaselineParams
from stream_app.core.rules import EngineOptions, PipelineStatus
from stream_app.core.rules.baselines import SameHourBaseline, baseline_from_dict
from stream_app.core.rules.metrics import compare

_DAY_MS = 86_400_000


@pytest.mark.parametrize(
    ("op", "below", "equal", "above"),
    [
        (">", False, False, True),
        (">=", False, True, True),
        ("<", True, False, False),
        ("<=", True, True, False),
    ],
)
def test_comparisons(op: str, below: bool, equal: bool, above: bool) -> None:
    assert (compare(op, 1.0, 2.0), compare(op, 2.0, 2.0), compare(op, 3.0, 2.0)) == (  # type: ignore[arg-type]
        below,
        equal,
        above,
    )


def test_success_rate_below_threshold() -> None:
    sc = Scenario.of(threshold_rule(metric="success_rate", op="<", threshold=0.9, for_s=0))
    sc.window(0, [agg("a", "eu", 0, errors=5), agg("b", "eu", 0, errors=15)])
    assert [e.labels["pool"] for _, e in sc.fired()] == ["b"]


def test_throughput_rule_counts_small_windows() -> None:
    rule = threshold_rule(
        metric="throughput_rps", op="<", threshold=1.0, for_s=0, min_requests=None
    )
    sc = Scenario.of(rule)
    sc.window(0, [agg("a", "eu", 0, requests=5), agg("b", "eu", 0, requests=50)])
    (event,) = [e for _, e in sc.fired()]
    assert (event.labels["pool"], event.value) == ("a", 0.5)
    assert "req/s" in event.annotations["summary"]


def test_an_instance_evaluates_only_its_levels() -> None:
    text = json.dumps(
        {
            "rules": [
                json.loads(threshold_rule(id="cell", for_s=0))["rules"][0],
                json.loads(threshold_rule(id="fleet", level="fleet", for_s=0))["rules"][0],
            ]
        }
    )
    worker = Scenario.of(text, levels=["pool_region", "pool"])
    worker.window(0, [agg("a", "eu", 0, errors=50)])
    assert [e.labels["rule_id"] for _, e in worker.fired()] == ["cell"]
    with pytest.raises(ValidationError):
        EngineOptions(levels=frozenset())


def test_same_hour_baseline_document_round_trips() -> None:
    params = BaselineParams(method="same_hour", min_abs_change=0.01, warmup_days=1)
    base = SameHourBaseline()
    rng = random.Random(5)
    for day in range(3):
        for w in range(50):
            base.learn(rng.random(), day * _DAY_MS + w * WINDOW_MS * 37, params)
    copy = baseline_from_dict(json.loads(json.dumps(base.to_dict())))
    probe = 3 * _DAY_MS + 1_000
    assert copy.judge(0.9, probe, params) == base.judge(0.9, probe, params)
    assert copy.to_dict() == base.to_dict()


@pytest.mark.parametrize(
    "doc",
    [
        {"method": "nope"},
        {"method": "ewma", "mean": float("nan"), "var": 0.0, "n": 1},
        {"method": "ewma", "mean": 0.0, "var": -1.0, "n": 1},
        {"method": "same_hour", "slots": {"25": [0, 0, 0, 0, 0, 0, 0]}},
        {"method": "same_hour", "slots": {"1": [0, 0]}},
    ],
)
def test_bad_baseline_documents_are_refused(doc: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - several messages
        baseline_from_dict(doc)


def test_renamed_pipeline_alert_resolves_the_old_one() -> None:
    def text(name: str) -> str:
        return json.dumps({"pipeline_health": {"for_s": 0, "alertname": name}})

    sc = Scenario.of(text("PipelineDegraded"))
    status = PipelineStatus(lag_ms=10**6, sink_ok=True, watermark_ms=end_of(0))
    sc.keep(0, sc.engine.set_pipeline_status(status, now_ms=end_of(0) + LAG_MS))
    sc.keep(0, sc.engine.replace_rules(rules(text("MetricsLagging")), now_ms=end_of(0) + 3_000))
    assert [(e.labels["alertname"], e.status) for _, e in sc.events] == [
        ("PipelineDegraded", AlertStatus.FIRING),
        ("PipelineDegraded", AlertStatus.RESOLVED),
        ("MetricsLagging", AlertStatus.FIRING),
    ]
    assert len(sc.engine.active_alerts()) == 1
