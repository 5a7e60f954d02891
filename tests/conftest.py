"""Root conftest: registers the service harness fixtures of tests/support (see its __init__)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# `tests.support` is imported by its full name; `.venv/bin/pytest` does not put the repo root on
# sys.path by itself (`python -m pytest` does).
_REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

pytest_plugins = [
    "tests.support.kafka",
    "tests.support.alertmanager",
    "tests.support.prometheus",
    "tests.support.tools",
    "tests.support.markers",
]


@pytest.fixture(autouse=True)
def _root_logger_as_found() -> Iterator[None]:
    """A test that runs a command's ``main`` configures the root logger for a process (a handler
    on that test's captured stderr); later tests must not log into that closed stream."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
