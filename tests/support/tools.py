"""Path fixtures of system programs the tests drive: ``chromium`` and ``kcat`` (session).

A missing program skips the test locally and fails it in CI.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .policy import require_tool
from .settings import HarnessSettings


@pytest.fixture(scope="session")
def chromium(harness_settings: HarnessSettings) -> Path:
    """Debian's Chromium (never a downloaded browser), for dashboard tests."""
    return require_tool(harness_settings, harness_settings.chromium_bin, "chromium")


@pytest.fixture(scope="session")
def kcat(harness_settings: HarnessSettings) -> Path:
    """kcat, an independent (librdkafka) Kafka client."""
    return require_tool(harness_settings, harness_settings.kcat_bin, "kcat")
