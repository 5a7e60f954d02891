"""The dashboard of a real ``demo`` process: an alert its rule engine fires and resolves on a
scripted incident shows in the alerts view and as annotations on the charts, live."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.support.ports import free_port, port_accepts, wait_until
from tests.support.process import ManagedProcess

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
FAST = {
    "PWM_PIPELINE__WINDOW_S": "2",
    "PWM_PIPELINE__GRACE_MS": "500",
    "PWM_PIPELINE__PROXY_WINDOW_S": "10",
    "PWM_PIPELINE__FLUSH_INTERVAL_MS": "250",
    "PWM_API_WINDOW_S": "2",
    "PWM_API_GRACE_MS": "500",
    "PWM_API_SETTLE_DELAY_MS": "500",
}
SCENARIO = """
name: dashboard-incident
fleet:
  regions: [{name: eu, base_latency_ms: 80}]
  pools:
    - {name: calm, rate_per_s: 100, error_rate: 0.01, proxies_per_region: 10}
    - {name: shaky, rate_per_s: 100, error_rate: 0.01, proxies_per_region: 10}
incidents:
  - {kind: error_spike, pool: shaky, at_s: 2, duration_s: 6, error_rate: 0.7}
"""
RULES = """
grouping: {group_wait_s: 0}
rules:
  - id: incident-errors
    name: IncidentErrorRate
    kind: threshold
    metric: error_rate
    op: ">"
    threshold: 0.3
    level: pool_region
    severity: page
    annotations:
      summary: "Error rate {value:.1%} in {pool}/{region}"
    next_steps:
      - Look at {pool}'s proxies.
"""


def test_an_alert_of_the_demo_fires_resolves_and_is_drawn(
    browser: Browser, tmp_path: Path, artifacts: Path
) -> None:
    (tmp_path / "scenario.yaml").write_text(SCENARIO)
    (tmp_path / "rules.yaml").write_text(RULES)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PWM_")}
    argv = [sys.executable, "-m", "stream_app.cli", "--log-level", "WARNING", "demo"]
    argv += ["--port", str(port), "--duration", "90", "--data-dir", str(tmp_path / "data")]
    argv += ["--scenario", str(tmp_path / "scenario.yaml"), "--rules", str(tmp_path / "rules.yaml")]
    demo = ManagedProcess(
        "demo",
        argv,
        log_path=tmp_path / "demo.log",
        cwd=REPO,
        env={**env, **FAST},
    )
    demo.start()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        assert wait_until(lambda: port_accepts(port), timeout_s=60, abort=demo.exit_reason), (
            demo.log_path.read_text()
        )
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"http://127.0.0.1:{port}/?range=15m&pool=shaky&refresh=5")
        history = page.locator("[data-testid=alerts-history] tbody tr")
        resolved = history.and_(page.locator("[data-status=resolved]"))
        expect(resolved).to_have_count(1, timeout=45_000)
        expect(resolved).to_contain_text("IncidentErrorRate")
        expect(resolved).to_contain_text("shaky / eu")
        markers = page.locator("#chart-rates .annotation[data-alertname=IncidentErrorRate]")
        expect(markers.and_(page.locator("[data-kind=firing]"))).to_have_count(1)
        expect(markers.and_(page.locator("[data-kind=resolved]"))).to_have_count(1)
        expect(page.locator("#chart-rates")).to_have_attribute("data-state", "data")
        page.screenshot(path=str(artifacts / "demo-alert.png"), full_page=True)
        assert errors == []
    finally:
        context.close()
        demo.terminate(timeout_s=20)
