"""Baseline rules: warm-up, k sigma AND min_abs_change, EWMA and same-hour, surviving restarts."""

from __future__ import annotations

import json
import random

import pytest
from alerting_core_kit import WINDOW_MS, Scenario, agg, end_of, rules

from schemas.rules import BaselineParams
from stream_app.core.rules import RuleEngine
from stream_app.core.rules.baselines import EwmaBaseline, SameHourBaseline

_DAY_MS = 86_400_000


def baseline_rule(**params: object) -> str:
    baseline: dict[str, object] = {
        "alpha": 0.1,
        "k_sigma": 3,
        "min_abs_change": 0.05,
        "warmup_windows": 20,
    }
    baseline.update(params)
    return json.dumps(
        {
            "rules": [
                {
                    "id": "pool-anomaly",
                    "name": "ProxyPoolErrorAnomaly",
                    "kind": "baseline",
                    "metric": "error_rate",
                    "level": "pool",
                    "min_requests": 50,
                    "for_s": 0,
                    "baseline": baseline,
                }
            ]
        }
    )


def _noisy_errors(rng: random.Random) -> int:
    return 2 + rng.randint(0, 2)  # 2..4 % on 100 requests


def test_no_verdict_during_warm_up_even_on_a_huge_change() -> None:
    sc = Scenario.of(baseline_rule(warmup_windows=20))
    rng = random.Random(1)
    for i in range(5):
        sc.window(i, [agg("a", "eu", i, errors=_noisy_errors(rng))])
    sc.window(5, [agg("a", "eu", 5, errors=90)])  # only 5 windows learnt
    assert sc.events == []


def test_fires_beyond_k_sigma_and_min_abs_change_not_on_a_small_deviation() -> None:
    sc = Scenario.of(baseline_rule())
    rng = random.Random(7)
    for i in range(40):
        sc.window(i, [agg("a", "eu", i, errors=_noisy_errors(rng))])
    assert sc.events == []
    # 6 %: several sigma above a ~3 % baseline with ~0.8 % spread, but only +3 points (< 5)
    sc.window(40, [agg("a", "eu", 40, errors=6)])
    assert sc.events == []
    # 15 %: beyond k sigma and +12 points
    sc.window(41, [agg("a", "eu", 41, errors=15)])
    (i, event), *rest = sc.fired()
    assert (i, rest) == (41, [])
    assert event.baseline is not None
    assert 0.02 <= event.baseline <= 0.04
    assert event.value == 0.15
    assert event.threshold is None
    assert "sigma" in event.annotations["description"]


def test_large_absolute_change_within_k_sigma_does_not_fire() -> None:
    sc = Scenario.of(baseline_rule(min_abs_change=0.01, k_sigma=3))
    for i in range(40):
        sc.window(i, [agg("a", "eu", i, errors=5 if i % 2 else 35)])  # 5 % / 35 % alternating
    assert sc.events == []  # 30-point swings are this pool's normal: sigma is ~15 points


def test_direction_down_ignores_increases() -> None:
    sc = Scenario.of(baseline_rule(direction="down", min_abs_change=0.02))
    for i in range(30):
        sc.window(i, [agg("a", "eu", i, errors=10)])
    sc.window(30, [agg("a", "eu", 30, errors=60)])
    assert sc.events == []
    sc.window(31, [agg("a", "eu", 31, errors=0)])
    assert len(sc.fired()) == 1


def test_breaching_windows_are_not_learnt() -> None:
    params = BaselineParams(alpha=0.5, min_abs_change=0.05, warmup_windows=3)
    base = EwmaBaseline()
    for _ in range(10):
        base.learn(0.02, 0, params)
    verdict = base.judge(0.5, 0, params)
    assert verdict is not None
    assert verdict.breach
    sc = Scenario.of(baseline_rule())
    for i in range(25):
        sc.window(i, [agg("a", "eu", i, errors=3)])
    for i in range(25, 35):  # a long incident stays an incident
        sc.window(i, [agg("a", "eu", i, errors=40)])
    assert len(sc.fired()) == 1
    assert sc.resolved() == []


def test_same_hour_baseline_compares_with_the_same_hour_of_previous_days() -> None:
    params = BaselineParams(method="same_hour", min_abs_change=0.05, warmup_days=2, k_sigma=3)
    base = SameHourBaseline()
    rng = random.Random(3)
    hour_9 = 9 * 3_600_000
    hour_20 = 20 * 3_600_000
    for day in range(3):
        for w in range(30):
            base.learn(0.02 + rng.random() * 0.01, day * _DAY_MS + hour_9 + w * WINDOW_MS, params)
            base.learn(0.30 + rng.random() * 0.01, day * _DAY_MS + hour_20 + w * WINDOW_MS, params)
    today = 3 * _DAY_MS
    busy_evening = base.judge(0.30, today + hour_20, params)
    assert busy_evening is not None
    assert not busy_evening.breach  # 30 % is normal at 20:00
    morning = base.judge(0.30, today + hour_9, params)
    assert morning is not None
    assert morning.breach  # and an anomaly at 09:00
    assert base.judge(0.30, today + 3 * 3_600_000, params) is None  # 03:00 never learnt


def test_same_hour_warm_up_counts_days() -> None:
    params = BaselineParams(method="same_hour", min_abs_change=0.05, warmup_days=3)
    base = SameHourBaseline()
    for day in range(2):
        for w in range(10):
            base.learn(0.02, day * _DAY_MS + w * WINDOW_MS, params)
    assert base.judge(0.9, 2 * _DAY_MS, params) is None  # 2 days folded, 3 needed
    for w in range(10):
        base.learn(0.02, 2 * _DAY_MS + w * WINDOW_MS, params)
    verdict = base.judge(0.9, 3 * _DAY_MS, params)
    assert verdict is not None
    assert verdict.breach


def test_baselines_survive_a_restart() -> None:
    text = baseline_rule()
    sc = Scenario.of(text)
    for i in range(30):
        sc.window(i, [agg("a", "eu", i, errors=3)])
    saved = json.loads(json.dumps(sc.engine.snapshot()))
    restarted = Scenario(RuleEngine(rules(text), state=saved))
    restarted.window(30, [agg("a", "eu", 30, errors=40)])  # no new warm-up needed
    assert len(restarted.fired()) == 1

    fresh = Scenario.of(text)
    fresh.window(30, [agg("a", "eu", 30, errors=40)])
    assert fresh.events == []


@pytest.mark.parametrize("change", [{"k_sigma": 4}, {"alpha": 0.2}, {"method": "same_hour"}])
def test_changing_baseline_parameters_restarts_learning(change: dict[str, object]) -> None:
    params: dict[str, object] = dict(change)
    if params.get("method") == "same_hour":
        params["alpha"] = None
    sc = Scenario.of(baseline_rule())
    for i in range(30):
        sc.window(i, [agg("a", "eu", i, errors=3)])
    sc.engine.replace_rules(rules(baseline_rule(**params)), now_ms=end_of(30))
    sc.window(30, [agg("a", "eu", 30, errors=40)])
    assert sc.events == []
    learnt = sc.engine.snapshot()["baselines"]
    assert learnt
    sc.engine.replace_rules(rules(baseline_rule(**params)), now_ms=end_of(31))
    assert sc.engine.snapshot()["baselines"] == learnt  # unchanged parameters keep it
