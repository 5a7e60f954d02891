"""``alerts validate`` and ``alerts export-prometheus``: the output is accepted by the real
``promtool check rules`` and behaves like the engine's rules under ``promtool test rules``."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
import yaml

from schemas.rules import ThresholdRule, parse_rules
from stream_app.cli_alerts import alerts_export_prometheus, alerts_validate, main
from stream_app.core.rules.events import alert_labels
from stream_app.core.rules.scopes import ScopeRef
from tests.support.prometheus import check_rules

RULES = """\
groups:
  - name: core
    labels: {team: sre}
    rules:
      - id: pool-errors
        name: ProxyPoolHighErrorRate
        kind: threshold
        metric: error_rate
        op: ">"
        threshold: 0.05
        for_s: 30
        keep_firing_for_s: 20
        selector: {pool: "pool-*"}
        annotations:
          summary: "error rate {value:.1%} on {scope}"
        next_steps: ["Check {pool} upstream"]
      - id: fleet-timeouts
        name: FleetTimeouts
        level: fleet
        kind: threshold
        metric: outcome_rate
        outcome: timeout
        op: ">"
        threshold: 0.12
        annotations: {summary: "timeouts {value:.0%}", description: "fleet"}
      - id: region-p99
        name: RegionSlow
        level: region
        kind: threshold
        metric: latency_p99_ms
        op: ">"
        threshold: 900
      - id: base
        name: Baseline
        kind: baseline
        metric: error_rate
        baseline: {min_abs_change: 0.02}
"""


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return path


def test_validate_ok_and_invalid(tmp_path: Path, rules_file: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert alerts_validate(rules_file, out=out, err=err) == 0
    assert "OK, 4 rule(s) (1 baseline, 3 threshold)" in out.getvalue()
    bad = tmp_path / "bad.yaml"
    bad.write_text(RULES.replace('">"', '"!="', 1))
    out, err = io.StringIO(), io.StringIO()
    assert alerts_validate(bad, out=out, err=err) == 1
    text = err.getvalue()
    assert f"{bad}: INVALID" in text
    assert "rule 'pool-errors'" in text
    assert "field 'op'" in text
    assert out.getvalue() == ""
    assert main(["alerts", "validate", str(tmp_path / "missing.yaml")]) == 1


def test_export_is_accepted_by_promtool(tmp_path: Path, rules_file: Path, promtool: Path) -> None:
    output = tmp_path / "prometheus-rules.yml"
    err = io.StringIO()
    assert alerts_export_prometheus(rules_file, output=output, err=err) == 0
    assert "skipped rule region-p99: latency percentiles" in err.getvalue()
    assert "skipped rule base: baseline rules" in err.getvalue()
    doc = yaml.safe_load(output.read_text())
    rules = doc["groups"][0]["rules"]
    assert [r["alert"] for r in rules] == ["ProxyPoolHighErrorRate", "FleetTimeouts"]
    assert rules[0]["for"] == "30s"
    assert rules[0]["keep_firing_for"] == "20s"
    checked = check_rules(promtool, output)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 2 rules found" in checked.stdout


def test_export_via_settings_and_stdout(rules_file: Path) -> None:
    from stream_app.alerting.settings import AlertingSettings

    out, err = io.StringIO(), io.StringIO()
    settings = AlertingSettings(rules_file=rules_file)
    assert alerts_export_prometheus(None, settings=settings, out=out, err=err) == 0
    assert yaml.safe_load(out.getvalue())["groups"][0]["name"] == "proxywhirl-metrics"
    assert alerts_export_prometheus(None, settings=AlertingSettings(), out=out, err=err) == 2


def test_exported_rules_fire_like_the_engine(
    tmp_path: Path, rules_file: Path, promtool: Path
) -> None:
    """promtool evaluates the exported rules on gauge series: alerts, labels, for, min volume."""
    output = tmp_path / "out.yml"
    assert alerts_export_prometheus(rules_file, output=output, err=io.StringIO()) == 0
    rule_set = parse_rules(RULES, "rules.yaml")
    pool_rule = rule_set.rule("pool-errors")
    fleet_rule = rule_set.rule("fleet-timeouts")
    assert isinstance(pool_rule, ThresholdRule)
    assert isinstance(fleet_rule, ThresholdRule)
    # The engine's label set for the same scope: same labels, same Alertmanager fingerprint.
    expected_labels = alert_labels(pool_rule, ScopeRef("pool_region", "pool-a", "eu"))
    fleet_labels = alert_labels(fleet_rule, ScopeRef("fleet"))

    requests = {"pool-a": 100, "pool-b": 10, "other": 290}
    timeouts = {"pool-a": 0.30, "pool-b": 0.0, "other": 0.08}
    errors = {"pool-a": 0.1, "pool-b": 0.5, "other": 0.9}
    fleet_ratio = sum(requests[p] * timeouts[p] for p in requests) / sum(requests.values())
    series: dict[str, str] = {}
    for pool in requests:
        scope = f'pool="{pool}",region="eu"'
        series[f"proxywhirl_window_requests{{{scope}}}"] = f"{requests[pool]}x12"
        series[f"proxywhirl_window_error_ratio{{{scope}}}"] = f"{errors[pool]}x12"
        series[f'proxywhirl_window_outcome_ratio{{{scope},outcome="timeout"}}'] = (
            f"{timeouts[pool]}x12"
        )
    # pool-a also scraped from a second API replica: must not double anything.
    replica = 'pool="pool-a",region="eu",instance="api-2"'
    series[f"proxywhirl_window_requests{{{replica}}}"] = "100x12"
    series[f"proxywhirl_window_error_ratio{{{replica}}}"] = "0.1x12"
    # pool-a: 10% errors on 100 requests -> fires after for_s; pool-b: 50% but only 10 requests
    # (< min_requests 20) -> no alert; other: not selected by "pool-*" -> no alert.
    assert fleet_ratio > fleet_rule.threshold
    test_doc = {
        "rule_files": [str(output)],
        "evaluation_interval": "10s",
        "tests": [
            {
                "interval": "10s",
                "input_series": [{"series": k, "values": v} for k, v in series.items()],
                "alert_rule_test": [
                    {"eval_time": "20s", "alertname": "ProxyPoolHighErrorRate", "exp_alerts": []},
                    {
                        "eval_time": "40s",
                        "alertname": "ProxyPoolHighErrorRate",
                        "exp_alerts": [
                            {
                                "exp_labels": expected_labels,
                                "exp_annotations": {
                                    "summary": "error rate 10% on pool pool-a in region eu",
                                    "description": (
                                        "error_rate on pool pool-a in region eu is 10% "
                                        "(> 5.00%) over 100 requests in the 10 s window "
                                        "(rule pool-errors)."
                                    ),
                                    "next_steps": "1. Check pool-a upstream",
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "10s",
                        "alertname": "FleetTimeouts",
                        "exp_alerts": [
                            {
                                "exp_labels": fleet_labels,
                                "exp_annotations": {
                                    "summary": f"timeouts {fleet_ratio * 100:.4g}%",
                                    "description": "fleet",
                                },
                            }
                        ],
                    },
                ],
            }
        ],
    }
    test_file = tmp_path / "test.yml"
    test_file.write_text(yaml.safe_dump(test_doc))
    result = subprocess.run(
        [str(promtool), "test", "rules", str(test_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
