"""A baseline rule through the real pipeline: silent during warm-up (even through an incident),
one alert after a real deviation once warmed up."""

from __future__ import annotations

from pathlib import Path

import pytest
from alert_scenario_kit import ScenarioRun, at, error_rate, fleet_scenario, transitions

BASELINE_RULES = """
grouping: {group_wait_s: 0}
rules:
  - id: error-anomaly
    name: ErrorRateAnomaly
    kind: baseline
    metric: error_rate
    level: pool_region
    min_requests: 50
    baseline:
      method: ewma
      half_life_windows: 3
      warmup_windows: 20
      k_sigma: 3
      min_abs_change: 0.1
      direction: up
    for_windows: 2
    severity: warning
    annotations:
      summary: "Error rate {value:.1%} in {pool}/{region}, usually {baseline:.1%}"
"""


async def test_no_baseline_alert_during_warm_up_and_one_after_a_real_deviation(
    tmp_path: Path,
) -> None:
    # The same 50 % error spike twice: in windows 2-3 (warm-up: 20 windows) and at 300-330 s.
    scenario = fleet_scenario(
        {"base": 30},
        incidents=[
            {
                "kind": "error_spike",
                "pool": "base",
                "at_s": 20,
                "duration_s": 20,
                "error_rate": 0.5,
            },
            {
                "kind": "error_spike",
                "pool": "base",
                "at_s": 300,
                "duration_s": 30,
                "error_rate": 0.5,
            },
        ],
    )
    run = ScenarioRun(scenario, BASELINE_RULES, tmp_path)
    async with run:
        await run.advance_to(370)
        await run.delivered()
    assert error_rate(run.truth(20, 40)) > 0.3, "the warm-up incident is a real deviation"
    # for_windows 2: pending at 300 s, fires at the end of the second window (320 s);
    # the first normal window (330-340 s) resolves it.
    assert transitions(run.events.events) == [
        ("firing", "ErrorRateAnomaly", "base/eu", at(300), None),
        ("resolved", "ErrorRateAnomaly", "base/eu", at(300), at(340)),
    ]
    fired = run.events.events[0]
    assert fired.window_end_ms == at(320)
    assert fired.value == pytest.approx(error_rate(run.truth(310, 320)))
    # The baseline is the normal level learnt around the incidents (which were not learnt).
    normal = error_rate(run.truth(200, 300))
    assert fired.baseline is not None
    assert abs(fired.baseline - normal) < 0.02
