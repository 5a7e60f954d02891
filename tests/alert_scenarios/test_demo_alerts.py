"""``proxywhirl-metrics demo`` with alerting: alert lines between the window tables, the alert
kept in the ClickHouse history (read back by ``alerts history`` in another process: chDB opens
one data path per process), an invalid rules file refused at start-up, and the bundled demo
rules file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alert_scenario_kit import ScenarioRun, at, transitions

from schemas.rules import ThresholdRule, parse_rules
from stream_app.embedded.alerting import BUNDLED_DEMO_RULES
from stream_app.simulator import load_scenario

REPO = Path(__file__).resolve().parents[2]
FAST_WINDOWS = {
    "PWM_PIPELINE__WINDOW_S": "2",
    "PWM_PIPELINE__GRACE_MS": "500",
    "PWM_PIPELINE__PROXY_WINDOW_S": "10",
    "PWM_PIPELINE__FLUSH_INTERVAL_MS": "250",
}
SCENARIO = """
name: alert-smoke
fleet:
  regions: [{name: eu, base_latency_ms: 80}]
  pools:
    - {name: good, rate_per_s: 150, error_rate: 0.01, proxies_per_region: 10}
    - {name: bad, rate_per_s: 150, error_rate: 0.01, proxies_per_region: 10}
incidents:
  - {kind: error_spike, pool: bad, at_s: 0, duration_s: 3600, error_rate: 0.6}
"""
RULES = """
grouping: {group_wait_s: 0}
rules:
  - id: smoke-errors
    name: SmokeHighErrorRate
    kind: threshold
    metric: error_rate
    op: ">"
    threshold: 0.3
    severity: page
    annotations:
      summary: "Error rate {value:.1%} in {pool}/{region}"
"""


def _cli(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PWM_")}
    return subprocess.run(
        [sys.executable, "-m", "stream_app.cli", "--log-level", "WARNING", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**env, **FAST_WINDOWS},
        check=False,
        cwd=REPO,
    )


@pytest.mark.slow
def test_demo_prints_firing_alerts_between_window_tables_and_keeps_them(tmp_path: Path) -> None:
    (tmp_path / "scenario.yaml").write_text(SCENARIO)
    (tmp_path / "rules.yaml").write_text(RULES)
    data_dir = tmp_path / "data"
    demo = _cli(
        "demo",
        "--port",
        "0",
        "--duration",
        "6",
        "--data-dir",
        str(data_dir),
        "--scenario",
        str(tmp_path / "scenario.yaml"),
        "--rules",
        str(tmp_path / "rules.yaml"),
    )
    assert demo.returncode == 0, demo.stderr
    lines = demo.stdout.splitlines()
    alert_lines = [line for line in lines if line.startswith("ALERT ")]
    assert alert_lines, demo.stdout
    assert all(
        line.startswith("ALERT FIRING   SmokeHighErrorRate [page] bad/eu: error_rate ")
        for line in alert_lines
    ), alert_lines
    first = lines.index(alert_lines[0])
    assert any(line.startswith("window ") for line in lines[:first]), "no table before the alert"
    assert "> 30.00%, since " in alert_lines[0]
    assert " | Error rate " in alert_lines[0]
    assert "demo: alerts fired 1, resolved 0" in demo.stdout

    history = _cli("alerts", "history", "--data-dir", str(data_dir), "--last", "3600", "--json")
    assert history.returncode == 0, history.stderr
    rows = json.loads(history.stdout)
    assert [(r["status"], r["alertname"], r["pool"], r["region"]) for r in rows] == [
        ("firing", "SmokeHighErrorRate", "bad", "eu")
    ]
    assert rows[0]["labels"]["rule_id"] == "smoke-errors"
    assert rows[0]["value"] > 0.3


@pytest.mark.slow
def test_demo_refuses_an_invalid_rules_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.replace("threshold: 0.3", "threshold: 3"))
    demo = _cli(
        "demo",
        "--port",
        "0",
        "--duration",
        "5",
        "--data-dir",
        str(tmp_path / "data"),
        "--rules",
        str(rules),
    )
    assert demo.returncode == 2
    assert f"invalid rules file {rules}" in demo.stderr
    assert "rule 'smoke-errors'" in demo.stderr
    assert "field 'threshold'" in demo.stderr
    assert "window " not in demo.stdout
    assert not (tmp_path / "data").exists(), "refused before opening the store"


def test_the_bundled_demo_rules_are_the_documented_copy_and_cover_the_demo_incidents() -> None:
    text = BUNDLED_DEMO_RULES.read_text()
    assert text == (REPO / "config" / "rules.demo.yaml").read_text()
    rules = parse_rules(text, str(BUNDLED_DEMO_RULES))
    levels = {r.level for r in rules.rules}
    assert {"proxy", "pool_region", "pool", "region", "fleet"} <= levels
    assert {r.kind for r in rules.rules} == {"threshold", "baseline", "absence"}
    # The first incident's error rate (a spike to 25 % in mobile) clears the scope rule's
    # threshold with room to spare, and the pools' normal error rates stay well below it.
    scope_rule = rules.rule("scope-error-rate")
    assert isinstance(scope_rule, ThresholdRule)
    demo = load_scenario(None)
    spikes = [i for i in demo.incidents if i.kind == "error_spike"]
    assert spikes
    assert all(getattr(i, "error_rate", 0.0) > scope_rule.threshold * 1.5 for i in spikes)
    assert all(p.error_rate < scope_rule.threshold / 2 for p in demo.fleet.pools)


async def test_the_default_demo_fires_and_resolves_an_alert_within_its_first_three_minutes(
    tmp_path: Path,
) -> None:
    # What a newcomer running `make demo` sees: the bundled scenario and rules, through the real
    # pipeline and rule engine (at a fifth of the demo's rate, to keep the test quick).
    demo = load_scenario(None)
    first = min(demo.incidents, key=lambda i: i.at_s)
    assert first.at_s < 60, "the first incident starts within the first minute"
    run = ScenarioRun(demo.with_total_rate(1_000), BUNDLED_DEMO_RULES.read_text(), tmp_path)
    async with run:
        await run.advance_to(180)
        await run.delivered()
    spike = [t for t in transitions(run.events.events) if t[1:3] == (
        "ScopeHighErrorRate", "mobile/ap-southeast"
    )]  # fmt: skip
    assert [t[0] for t in spike] == ["firing", "resolved"], transitions(run.events.events)
    (_, _, _, starts_ms, _), (_, _, _, _, ends_ms) = spike
    assert at(20) <= starts_ms <= at(60)
    assert ends_ms is not None
    assert ends_ms <= at(150)
