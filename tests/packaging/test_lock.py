"""requirements.lock (what `make demo`, `make test` and the Docker image install) pins every
dependency of the base and of every extra, so the README's commands keep installing everything."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match is not None, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def test_the_lock_pins_the_base_and_every_extra() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras: dict[str, list[str]] = project["optional-dependencies"]
    assert {"kafka", "http", "proxywhirl", "server", "dev"} <= set(extras)
    pinned = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pinned[_name(name)] = version
    wanted = {_name(r) for r in project["dependencies"]}
    for extra, requirements in extras.items():
        if (
            extra != "bench"
        ):  # `make bench` only: requirements-bench.lock (tests/benchmarks_harness)
            wanted |= {_name(r) for r in requirements}
    assert sorted(wanted - set(pinned)) == []
    # The fleet host's base stays small: no service dependency.
    base = {_name(r) for r in project["dependencies"]}
    assert not base & {"faust-streaming", "chdb", "clickhouse-connect", "fastapi", "uvicorn"}
    makefile = (REPO / "Makefile").read_text()
    lock_extras = re.search(r"pip install --quiet -e '\.\[([a-z,]+)\]'", makefile)
    assert lock_extras is not None
    assert set(lock_extras.group(1).split(",")) == set(extras) - {"bench"}  # every extra is locked
