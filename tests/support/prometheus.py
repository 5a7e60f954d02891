"""Prometheus tooling for tests: the ``promtool`` fixture (Debian ``prometheus`` package).

``promtool`` (session) is the path of the binary; :func:`check_rules` runs
``promtool check rules FILE...`` and returns the completed process (exit 0 = valid). A missing
binary skips the test locally and fails it in CI.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .policy import require_tool
from .settings import HarnessSettings


def check_rules(
    promtool: Path, *rule_files: Path, timeout_s: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """``promtool check rules``: exit code 0 when every file is a valid rules file."""
    return subprocess.run(
        [str(promtool), "check", "rules", *map(str, rule_files)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@pytest.fixture(scope="session")
def promtool(harness_settings: HarnessSettings) -> Path:
    return require_tool(harness_settings, harness_settings.promtool_bin, "prometheus")
