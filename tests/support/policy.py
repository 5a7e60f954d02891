"""The CI rule of the harnesses: outside CI a missing tool skips the test, in CI it fails it.

Any other harness error (a service that does not start) fails the test everywhere.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

from .errors import ToolMissing
from .settings import HarnessSettings


def unavailable(settings: HarnessSettings, reason: str) -> NoReturn:
    """Skip (locally) or fail (in CI) the requesting test because ``reason``."""
    if settings.ci:
        pytest.fail(f"{reason} (CI=true: a missing service is a failure, not a skip)")
    pytest.skip(reason)


def find_tool(path_or_name: Path | str, package: str) -> Path:
    """Resolve an executable (an absolute path or a name on PATH) or raise :class:`ToolMissing`."""
    candidate = Path(path_or_name)
    if candidate.is_absolute():
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    else:
        found = shutil.which(str(path_or_name))
        if found is not None:
            return Path(found)
    raise ToolMissing(
        f"{path_or_name} is not installed (Debian package {package}; scripts/bootstrap-system.sh)"
    )


def require_tool(settings: HarnessSettings, path_or_name: Path | str, package: str) -> Path:
    """:func:`find_tool`, applying the CI rule when it is missing."""
    try:
        return find_tool(path_or_name, package)
    except ToolMissing as exc:
        unavailable(settings, str(exc))
