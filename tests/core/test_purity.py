"""The package rules of docs/architecture.md, checked twice: in the sources and at run time.

- ``schemas`` imports nothing of ours (neither ``producer``, ``stream_app`` nor ``api``) and no
  service dependency: a fleet host imports it from the light install.
- ``producer`` imports neither ``stream_app`` nor ``api``, and no service dependency (Faust,
  ClickHouse, the web stack): it runs inside the fleet host's ProxyWhirl process.
- ``stream_app.core`` imports no adapter: nothing of ``stream_app`` outside the core, no
  ``producer`` or ``api``, no runtime, broker, database, web or network library, no asyncio.

The source scan parses every module of the package and refuses any import of a forbidden module,
direct, nested in a function, or relative (``importlib.import_module("chdb")`` is out of scope).
The run-time check imports every module of the package in a fresh interpreter and looks at
``sys.modules``: no forbidden module may be loaded, except what the allowed dependencies load on
their own (the baseline: pydantic's plugin loader imports ``importlib.metadata``, which imports
``email.utils`` and with it ``socket``; so ``socket`` is compared with that baseline).
"""

from __future__ import annotations

import ast
import json
import os
import pkgutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

SERVICE_LIBRARIES = frozenset(
    {"faust", "mode", "chdb", "clickhouse_connect", "fastapi", "starlette", "uvicorn"}
)
"""What only the service (the ``[server]`` extra) installs."""

ADAPTER_LIBRARIES = SERVICE_LIBRARIES | {
    "aiokafka",
    "kafka",
    "httpx",
    "asyncio",
    "socket",
    "sqlite3",
}


@dataclass(frozen=True)
class Rule:
    """One rule of docs/architecture.md: what ``package`` must never import."""

    package: str
    forbidden: frozenset[str]
    allowed: frozenset[str] = frozenset()
    """Exceptions inside ``forbidden`` (``stream_app.core`` may import itself)."""
    parents: frozenset[str] = frozenset()
    """Parent packages loaded with the package itself (their ``__init__`` is checked too)."""
    baseline_imports: tuple[str, ...] = ()
    """Allowed dependencies imported before the package (their own imports are no violation)."""

    def violates(self, name: str) -> bool:
        def under(prefixes: frozenset[str]) -> bool:
            return any(name == p or name.startswith(p + ".") for p in prefixes)

        return under(self.forbidden) and not under(self.allowed) and name not in self.parents

    @property
    def directory(self) -> Path:
        return REPO_ROOT.joinpath(*self.package.split("."))


RULES = (
    Rule(
        "schemas",
        frozenset({"producer", "stream_app", "api", "aiokafka", "httpx"}) | SERVICE_LIBRARIES,
        baseline_imports=("pydantic", "msgspec", "yaml"),
    ),
    Rule(
        "producer",
        frozenset({"stream_app", "api"}) | SERVICE_LIBRARIES,
        baseline_imports=("pydantic", "msgspec", "prometheus_client", "schemas.events"),
    ),
    Rule(
        "stream_app.core",
        frozenset({"stream_app", "producer", "api"}) | ADAPTER_LIBRARIES,
        allowed=frozenset({"stream_app.core"}),
        parents=frozenset({"stream_app"}),
        baseline_imports=(
            "pydantic",
            "msgspec",
            "schemas.aggregates",
            "schemas.alerts",
            "schemas.events",
            "schemas.latency_buckets",
            "schemas.wire",
        ),
    ),
)


def imported_names(source: str, module: str, is_package: bool = False) -> list[str]:
    """Every module ``source`` imports, as absolute names (relative imports resolved)."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
                names = [f"{target}.{a.name}" for a in node.names] if not node.module else []
                found += [target, *names]
            elif node.module:
                found.append(node.module)
    return found


def modules_of(rule: Rule) -> list[tuple[str, Path]]:
    """(module name, file) of every module of the rule's package."""
    result = []
    for path in sorted(rule.directory.rglob("*.py")):
        relative = path.relative_to(REPO_ROOT).with_suffix("")
        parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
        result.append((".".join(parts), path))
    return result


def source_violations(rule: Rule) -> dict[str, list[str]]:
    offenders = {}
    for module, path in modules_of(rule):
        names = imported_names(
            path.read_text(encoding="utf-8"), module, is_package=path.name == "__init__.py"
        )
        bad = [n for n in names if rule.violates(n)]
        if bad:
            offenders[module] = bad
    return offenders


_PROBE = """
import importlib, json, sys
for module in {baseline!r}:
    importlib.import_module(module)
before = set(sys.modules)
for module in {modules!r}:
    importlib.import_module(module)
print(json.dumps({{"before": sorted(before), "after": sorted(sys.modules)}}))
"""


def runtime_violations(rule: Rule, modules: list[str]) -> list[str]:
    """Forbidden modules loaded by importing ``modules`` and not already by the baseline."""
    probe = _PROBE.format(baseline=rule.baseline_imports, modules=modules)
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
    before = set(loaded["before"])
    return sorted(n for n in loaded["after"] if n not in before and rule.violates(n))


def package_modules(rule: Rule) -> list[str]:
    names = [rule.package]
    for info in pkgutil.walk_packages([str(rule.directory)], prefix=f"{rule.package}."):
        names.append(info.name)
    return sorted(names)


def test_the_scan_sees_forbidden_imports() -> None:
    core = RULES[2]
    sample = (
        "import os\nimport asyncio.tasks\nfrom kafka import KafkaConsumer\ndef f():\n import chdb\n"
        "from stream_app.core import windows\nfrom stream_app.storage import sink\n"
        "from .. import worker\nfrom ..embedded.demo import run\nfrom . import accumulator\n"
    )
    names = imported_names(sample, "stream_app.core.aggregator")
    assert sorted(n for n in names if core.violates(n)) == [
        "asyncio.tasks",
        "chdb",
        "kafka",
        "stream_app.embedded.demo",
        "stream_app.storage",
        "stream_app.worker",
    ]
    assert not [
        n
        for n in imported_names("from modes import x\nimport socketserver_like\n", "m")
        if core.violates(n)
    ]
    assert RULES[0].violates("producer.kafka")
    assert RULES[1].violates("api.app")
    assert RULES[1].violates("fastapi")
    assert not RULES[1].violates("aiokafka")  # the [kafka] extra of the producer


@pytest.mark.parametrize("rule", RULES, ids=[r.package for r in RULES])
def test_no_source_breaks_the_rule(rule: Rule) -> None:
    modules = dict(modules_of(rule))
    assert len(modules) >= 5, rule.package
    assert source_violations(rule) == {}


@pytest.mark.parametrize("rule", RULES, ids=[r.package for r in RULES])
def test_importing_every_module_loads_nothing_forbidden(rule: Rule) -> None:
    modules = package_modules(rule)
    assert len(modules) >= 5, rule.package
    assert runtime_violations(rule, modules) == []


def test_parent_packages_import_nothing() -> None:
    """``stream_app/__init__.py`` loads with the core, so it must not import anything itself."""
    for rule in RULES:
        for parent in rule.parents:
            init = REPO_ROOT.joinpath(*parent.split("."), "__init__.py")
            names = imported_names(init.read_text(encoding="utf-8"), parent, is_package=True)
            assert names in ([], ["__future__"]), (parent, names)


def test_the_runtime_check_can_fail() -> None:
    core, producer = RULES[2], RULES[1]
    assert "stream_app.storage.client" in runtime_violations(core, ["stream_app.storage.client"])
    assert "fastapi" in runtime_violations(producer, ["api.app"])
