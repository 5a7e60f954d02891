"""promtool validates rules files; the chromium and kcat fixtures point at working programs."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.prometheus import check_rules

VALID_RULES = """\
groups:
  - name: proxywhirl
    rules:
      - alert: PoolErrorRateHigh
        expr: proxywhirl_pool_error_ratio > 0.05
        for: 1m
        labels: {severity: critical}
        annotations: {summary: "error rate above 5% in {{ $labels.pool }}"}
"""

INVALID_RULES = """\
groups:
  - name: proxywhirl
    rules:
      - alert: Broken
        expr: sum(rate(proxywhirl_requests_total[5m]) by
"""


def test_promtool_accepts_valid_rules(promtool: Path, tmp_path: Path) -> None:
    rules = tmp_path / "valid.yml"
    rules.write_text(VALID_RULES)
    done = check_rules(promtool, rules)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 1 rules found" in done.stdout


def test_promtool_rejects_invalid_rules(promtool: Path, tmp_path: Path) -> None:
    rules = tmp_path / "invalid.yml"
    rules.write_text(INVALID_RULES)
    done = check_rules(promtool, rules)
    assert done.returncode != 0
    assert "FAILED" in done.stdout + done.stderr


def test_chromium_fixture_is_a_runnable_chromium(chromium: Path) -> None:
    done = subprocess.run(
        [str(chromium), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Chromium" in done.stdout


def test_kcat_fixture_is_kcat(kcat: Path) -> None:
    done = subprocess.run(
        [str(kcat), "-V"], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0
    assert "librdkafka" in done.stdout
