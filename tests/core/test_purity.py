"""stream_app.core stays pure: no runtime, broker, database, network or asyncio imports.

Two checks. The source scan reads every module of the package and refuses any import of a
forbidden module, direct or nested (``import asyncio``, ``from kafka import ...``,
``importlib.import_module("chdb")`` is out of scope). The run-time check imports every module in
a fresh interpreter and looks at ``sys.modules``: none of the forbidden modules may be loaded,
except what the allowed dependencies (schemas, pydantic, msgspec) load on their own. pydantic's
plugin loader imports ``importlib.metadata``, which imports ``email.utils`` and with it
``socket``, so ``socket`` is compared with that baseline rather than required absent.
"""

from __future__ import annotations

import ast
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import stream_app.core

FORBIDDEN = (
    "faust",
    "mode",
    "aiokafka",
    "kafka",
    "clickhouse_connect",
    "chdb",
    "asyncio",
    "socket",
    "sqlite3",
)
CORE_DIR = Path(stream_app.core.__file__).parent
REPO_ROOT = CORE_DIR.parent.parent


def core_modules() -> list[str]:
    names = ["stream_app.core"]
    for info in pkgutil.walk_packages([str(CORE_DIR)], prefix="stream_app.core."):
        names.append(info.name)
    return sorted(names)


def forbidden_imports(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [n for n in names if n.split(".")[0] in FORBIDDEN]
    return found


def test_the_scan_sees_forbidden_imports() -> None:
    sample = (
        "import os\nimport asyncio.tasks\nfrom kafka import KafkaConsumer\ndef f():\n import chdb\n"
    )
    assert forbidden_imports(sample) == ["asyncio.tasks", "kafka", "chdb"]
    assert forbidden_imports("from modes import x\nimport socketserver_like\n") == []


def test_no_core_source_imports_a_forbidden_module() -> None:
    offenders = {}
    sources = sorted(CORE_DIR.rglob("*.py"))
    assert CORE_DIR / "aggregator.py" in sources
    for path in sources:
        bad = forbidden_imports(path.read_text(encoding="utf-8"))
        if bad:
            offenders[str(path.relative_to(REPO_ROOT))] = bad
    assert offenders == {}


_PROBE = """
import importlib, json, sys
forbidden = {forbidden!r}
import schemas.aggregates, schemas.alerts, schemas.events, schemas.latency_buckets, schemas.wire
import msgspec, pydantic
baseline = sorted(name for name in forbidden if name in sys.modules)
for module in {modules!r}:
    importlib.import_module(module)
after = sorted(name for name in forbidden if name in sys.modules)
print(json.dumps({{"baseline": baseline, "after": after}}))
"""


def test_importing_every_core_module_loads_nothing_forbidden() -> None:
    modules = core_modules()
    assert "stream_app.core.aggregator" in modules
    assert "stream_app.core.watermark" in modules
    probe = _PROBE.format(forbidden=FORBIDDEN, modules=modules)
    # Without coverage's subprocess hook: coverage itself imports sqlite3 at start-up.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["after"] == loaded["baseline"]
    # Only socket may come with the allowed dependencies; the rest must be absent altogether.
    assert set(loaded["baseline"]) <= {"socket"}
