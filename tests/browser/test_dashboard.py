"""The web dashboard in headless Chromium against a seeded ``serve``-like site: it loads
cleanly, filters and drills down without navigating (the URL follows, the back button
restores), and tells the truth about silence, staleness, alerts, a missing token and an API
that does not answer. Screenshots go to build/test-artifacts/dashboard."""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import urljoin

import httpx
from playwright.sync_api import Request, Route, expect

from tests.browser.conftest import DashboardPage
from tests.browser.site import SILENT, SPIKE, TOKEN, Site

SERIES = re.compile(r"/api/v1/series\?")


def _loaded(d: DashboardPage) -> int:
    """How many refreshes the page has rendered (``data-loaded`` on the body; 0: none yet).

    Read with ``evaluate`` (the page's CSP refuses the eval ``wait_for_function`` needs)."""
    return int(d.page.evaluate("Number(document.body.dataset.loaded || 0)"))


def _wait_refreshed(d: DashboardPage, after: int, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while _loaded(d) <= after:
        assert time.monotonic() < deadline, f"no refresh rendered after #{after}"
        d.page.wait_for_timeout(50)


def _open(d: DashboardPage, query: str = "") -> None:
    d.page.goto(f"{d.site.url}/{query}")
    _wait_refreshed(d, 0)
    d.page.wait_for_selector("[data-testid=fleet-grid]")


def test_the_overview_loads_without_console_errors(
    dashboard: DashboardPage, artifacts: Path
) -> None:
    _open(dashboard)
    page = dashboard.page
    cells = page.locator("button.cell")
    expect(cells).to_have_count(5)  # 2 pools x 2 regions, and isp/eu-west
    silent = page.locator(f"button.cell[data-pool={SILENT[0]}][data-region={SILENT[1]}]")
    expect(silent).to_have_attribute("data-status", "no_data")
    expect(silent).to_contain_text("no data")
    busy = page.locator("button.cell[data-pool=residential][data-region=us-east]")
    expect(busy).to_have_attribute("data-status", "ok")
    expect(busy).to_contain_text("p95")
    for chart in ("rates", "latency", "throughput", "outcomes"):
        expect(page.locator(f"#chart-{chart}")).to_have_attribute("data-state", "data")
        expect(page.locator(f"#chart-{chart} canvas")).to_have_count(1)
    expect(page.locator("#stale-banner")).to_be_hidden()
    expect(page.locator("#error-banner")).to_be_hidden()
    # every metric explains itself: one disclosure per chart and one on the alerts
    assert page.locator("details.help").count() >= 5
    page.locator("#chart-latency details.help summary").click()
    expect(page.locator("#chart-latency .help-body")).to_contain_text("relative error under 1 %")
    page.keyboard.press("Escape")
    page.screenshot(path=str(artifacts / "overview.png"), full_page=True)
    assert dashboard.console.errors == []


def test_the_pool_filter_changes_the_charts_and_the_url_without_a_navigation(
    dashboard: DashboardPage,
) -> None:
    _open(dashboard)
    page = dashboard.page
    page.evaluate("window.__sameDocument = true")  # a navigation would forget it
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if SERIES.search(r.url) else None)
    before = _loaded(dashboard)
    page.get_by_label("Pool", exact=True).select_option("mobile")
    _wait_refreshed(dashboard, before)
    assert "pool=mobile" in page.url
    assert page.evaluate("window.__sameDocument") is True
    assert asked
    assert all("pool=mobile" in url for url in asked), asked
    expect(page.locator("#scope-title")).to_have_text("mobile / all regions")
    expect(page.locator("#chart-rates")).to_have_attribute("data-state", "data")
    expect(page.locator("[data-testid=offenders]")).to_be_visible()

    before = _loaded(dashboard)
    page.go_back()
    _wait_refreshed(dashboard, before)
    assert "pool=" not in page.url
    assert page.evaluate("window.__sameDocument") is True
    expect(page.get_by_label("Pool", exact=True)).to_have_value("")
    expect(page.locator("#scope-title")).to_have_text("all pools / all regions")
    page.go_forward()
    expect(page.locator("#scope-title")).to_have_text("mobile / all regions")
    assert dashboard.console.errors == []


def test_drilling_down_to_a_cell_and_a_proxy(dashboard: DashboardPage, artifacts: Path) -> None:
    _open(dashboard, "?range=1h")
    page = dashboard.page
    before = _loaded(dashboard)
    page.locator("button.cell[data-pool=residential][data-region=eu-west]").click()
    _wait_refreshed(dashboard, before)
    assert "pool=residential" in page.url
    assert "region=eu-west" in page.url
    offenders = page.locator("[data-testid=offenders] tbody tr")
    expect(offenders.first).to_contain_text("100.0 %")  # the proxy failing every request
    page.screenshot(path=str(artifacts / "drilldown-scope.png"), full_page=True)
    before = _loaded(dashboard)
    offenders.first.locator("button[data-proxy]").click()
    _wait_refreshed(dashboard, before)
    assert re.search(r"proxy=[0-9a-f]{16}", page.url)
    expect(page.locator("#scope-title")).to_contain_text("proxy ")
    expect(page.locator("#chart-rates")).to_have_attribute("data-state", "data")
    expect(page.locator("#chart-throughput")).to_be_hidden()  # per-proxy: errors and p95 only
    page.screenshot(path=str(artifacts / "drilldown-proxy.png"), full_page=True)
    assert dashboard.console.errors == []


def test_the_range_picker_and_the_keyboard(dashboard: DashboardPage) -> None:
    _open(dashboard)
    page = dashboard.page
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if SERIES.search(r.url) else None)
    before = _loaded(dashboard)
    page.get_by_label("Range").select_option("6h")
    _wait_refreshed(dashboard, before)
    assert "range=6h" in page.url
    assert asked
    assert all("range=6h" in url for url in asked), asked
    # custom: two local times, applied; the URL carries REST v1's start and end
    page.get_by_label("Range").select_option("custom")
    page.get_by_label("From", exact=True).fill("2026-01-01T10:00")
    page.get_by_label("To", exact=True).fill("2026-01-01T12:00")
    before = _loaded(dashboard)
    page.get_by_role("button", name="Apply").click()
    _wait_refreshed(dashboard, before)
    assert re.search(r"start=\d+&end=\d+", page.url)
    assert "range=" not in page.url
    # a grid cell is a button: reachable and operable from the keyboard
    cell = page.locator("button.cell[data-pool=mobile][data-region=eu-west]")
    cell.focus()
    before = _loaded(dashboard)
    page.keyboard.press("Enter")
    _wait_refreshed(dashboard, before)
    assert "pool=mobile" in page.url
    assert "region=eu-west" in page.url
    expect(page.locator("button.cell[data-pool=mobile][data-region=eu-west]")).to_have_attribute(
        "aria-pressed", "true"
    )
    assert dashboard.console.errors == []


def test_a_deviation_from_the_learnt_baseline_is_highlighted(dashboard: DashboardPage) -> None:
    _open(dashboard, "?range=1h&pool=residential&region=eu-west")
    page = dashboard.page
    cell = page.locator("button.cell[data-pool=residential][data-region=eu-west]")
    badge = cell.locator(".badge.baseline")
    expect(badge).to_have_class(re.compile(r"\bbreach\b"))
    expect(badge).to_contain_text("\u03c3 error_rate")
    expect(cell).to_have_attribute("aria-label", re.compile(r"above its baseline"))
    calm = page.locator("button.cell[data-pool=mobile][data-region=eu-west] .badge.baseline")
    expect(calm).to_have_count(0)  # no baseline learnt there: nothing to show
    rates = page.locator("#chart-rates")
    expect(rates).to_have_attribute("data-baseline", "0.03")
    expect(rates.locator(".baseline-note")).to_contain_text("baseline 3.00 %")


def test_a_silent_pool_shows_no_data_not_a_line_at_zero(dashboard: DashboardPage) -> None:
    _open(dashboard, f"?range=15m&pool={SILENT[0]}&region={SILENT[1]}")
    page = dashboard.page
    for chart in ("rates", "latency", "throughput", "outcomes"):
        box = page.locator(f"#chart-{chart}")
        expect(box).to_have_attribute("data-state", "no-data")
        expect(box.locator(".no-data")).to_contain_text("No data for isp / eu-west")
        expect(box.locator("canvas")).to_have_count(0)
    expect(page.locator("[data-testid=offenders]")).to_have_count(0)
    expect(page.locator("#offenders")).to_contain_text("No data")


def test_the_stale_banner_appears_when_data_stops(dashboard: DashboardPage) -> None:
    _open(dashboard, "?refresh=5")
    page = dashboard.page
    expect(page.locator("#stale-banner")).to_be_hidden()
    dashboard.site.clock.offset_s += 120  # two minutes pass without a new window
    banner = page.locator("#stale-banner")
    expect(banner).to_be_visible(timeout=12_000)  # the next auto-refresh (every 5 s)
    expect(banner).to_contain_text("Stale data")
    expect(banner).to_contain_text("more than two 10 s windows")


def test_auto_refresh_can_be_paused_and_resumed(dashboard: DashboardPage) -> None:
    _open(dashboard, "?refresh=5")
    page = dashboard.page
    pause = page.get_by_role("button", name="Pause auto-refresh")
    pause.click()
    expect(page.locator("#pause")).to_have_attribute("aria-pressed", "true")
    paused_at = _loaded(dashboard)
    page.wait_for_timeout(6_000)  # longer than the refresh period: nothing may happen
    assert _loaded(dashboard) == paused_at
    page.get_by_role("button", name="Resume auto-refresh").click()
    _wait_refreshed(dashboard, paused_at, timeout_s=3)  # at once, not a period later
    expect(page.locator("#pause")).to_have_attribute("aria-pressed", "false")


def test_an_alert_shows_in_the_alerts_view_and_as_annotations(dashboard: DashboardPage) -> None:
    _open(dashboard, f"?range=1h&pool={SPIKE[0]}&region={SPIKE[1]}")
    page = dashboard.page
    history = page.locator("[data-testid=alerts-history] tbody tr")
    expect(history).to_have_count(2)
    expect(history.nth(0)).to_have_attribute("data-status", "resolved")
    expect(history.nth(1)).to_have_attribute("data-status", "firing")
    expect(history.nth(0)).to_contain_text("ScopeHighErrorRate")
    expect(history.nth(0)).to_contain_text("60.00 % vs threshold 15.00 %")
    expect(page.locator("[data-testid=alerts-active]")).to_contain_text("No alert is firing")
    markers = page.locator("#chart-rates .annotation[data-alertname=ScopeHighErrorRate]")
    expect(markers).to_have_count(2)
    expect(markers.nth(0)).to_have_attribute("data-kind", "firing")
    expect(markers.nth(1)).to_have_attribute("data-kind", "resolved")
    export = page.locator("#export-csv")
    href = export.get_attribute("href") or ""
    assert href.startswith("api/v1/export?range=1h&pool=mobile&region=us-east")
    assert "format=csv" in href
    csv = httpx.get(urljoin(f"{dashboard.site.url}/", href), timeout=30)  # the export route
    assert csv.status_code == 200, csv.text
    assert csv.headers["content-type"].startswith("text/csv")


def test_a_token_is_asked_for_when_reads_need_one(token_dashboard: DashboardPage) -> None:
    d = token_dashboard
    page = d.page
    page.goto(f"{d.site.url}/")
    form = page.locator("#token-form")
    expect(form).to_be_visible()
    expect(form).to_contain_text("needs a token")
    sent: list[str | None] = []
    page.on("request", lambda r: sent.append(r.headers.get("authorization")))
    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Use this token").click()
    page.wait_for_selector("[data-testid=fleet-grid]")
    expect(form).to_be_hidden()
    assert f"Bearer {TOKEN}" in sent
    assert page.evaluate("sessionStorage.getItem('pwm-dashboard-token')") == TOKEN


def test_an_unreachable_api_is_said_plainly(dashboard: DashboardPage) -> None:
    _open(dashboard, "?refresh=5")
    page = dashboard.page

    def refuse(route: Route, request: Request) -> None:
        route.abort("connectionrefused")

    page.route(re.compile(r"/api/v1/"), refuse)
    page.get_by_label("Pool", exact=True).select_option("mobile")
    banner = page.locator("#error-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Cannot reach the API")
    expect(page.locator("[data-testid=fleet-grid]")).to_be_visible()  # the last data stays
    page.unroute(re.compile(r"/api/v1/"))
    expect(banner).to_be_hidden(timeout=12_000)  # the next auto-refresh succeeds


def test_the_page_is_served_with_a_strict_policy_and_compressed(site: Site) -> None:
    with httpx.Client(base_url=site.url) as http:
        page = http.get("/")
        script = http.get("/static/app.js", headers={"Accept-Encoding": "gzip"})
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert script.status_code == 200
    assert script.headers["content-encoding"] == "gzip"
    assert script.headers["content-security-policy"]
