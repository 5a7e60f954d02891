"""Root conftest: registers the service harness fixtures of tests/support (see its __init__)."""

from __future__ import annotations

import sys
from pathlib import Path

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
