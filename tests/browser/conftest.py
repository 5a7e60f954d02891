"""Fixtures of the dashboard tests: Debian's Chromium driven by Playwright (never a downloaded
browser; missing: skipped locally, a failure in CI), a seeded site (:mod:`tests.browser.site`),
and the artifacts directory screenshots go to (``build/test-artifacts/dashboard``, git-ignored).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

from api.settings import ApiToken
from stream_app.storage.client import StorageClient, get_client, open_chdb_path
from stream_app.storage.engines import quote_identifier
from stream_app.storage.migrate import Migrator
from stream_app.storage.settings import StorageSettings
from tests.browser.site import RULES, TOKEN, Site, seed, serve

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "build" / "test-artifacts" / "dashboard"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    """Per module: while Playwright's sync API runs, an event loop is marked running in this
    thread, and every asyncio test after it (pytest-asyncio) would refuse to start."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright, chromium: Path) -> Iterator[Browser]:
    instance = playwright_driver.chromium.launch(executable_path=str(chromium), headless=True)
    yield instance
    instance.close()


@dataclass
class Console:
    """What the page logged: console errors and uncaught exceptions."""

    errors: list[str] = field(default_factory=list)

    def on_message(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} ({message.location.get('url', '')})")


@dataclass
class DashboardPage:
    page: Page
    console: Console
    site: Site


@pytest.fixture(scope="module")
def seeded_storage(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[StorageSettings, StorageClient, int]]:
    """A database seeded with the history of :mod:`tests.browser.site`, ending now."""
    path = open_chdb_path() or str(tmp_path_factory.mktemp("chdb"))
    settings = StorageSettings(dsn=f"chdb://{path}", database=f"dash_{uuid.uuid4().hex[:12]}")
    client = get_client(settings)
    Migrator(client, settings).migrate()
    site_start = Site.now_ms()
    seed(settings, client, site_start)
    yield settings, client, site_start
    client.command(f"DROP DATABASE IF EXISTS {quote_identifier(settings.database)} SYNC")


@pytest.fixture
def site(
    seeded_storage: tuple[StorageSettings, StorageClient, int], tmp_path: Path
) -> Iterator[Site]:
    settings, client, seeded_ms = seeded_storage
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    with serve(settings, client, seeded_ms=seeded_ms, rules_path=rules) as running:
        yield running


def open_page(browser: Browser, site: Site) -> Iterator[DashboardPage]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    console = Console()
    page.on("console", console.on_message)
    page.on("pageerror", lambda exc: console.errors.append(f"uncaught: {exc}"))
    try:
        yield DashboardPage(page, console, site)
    finally:
        context.close()


@pytest.fixture
def dashboard(browser: Browser, site: Site) -> Iterator[DashboardPage]:
    yield from open_page(browser, site)


@pytest.fixture
def token_dashboard(
    browser: Browser, seeded_storage: tuple[StorageSettings, StorageClient, int]
) -> Iterator[DashboardPage]:
    """The page against a site whose reads need a token (as off loopback)."""
    settings, client, seeded_ms = seeded_storage
    token = ApiToken.model_validate({"name": "viewer", "token": TOKEN, "roles": ["read"]})
    with serve(settings, client, seeded_ms=seeded_ms, read_open=False, tokens=[token]) as running:
        yield from open_page(browser, running)
