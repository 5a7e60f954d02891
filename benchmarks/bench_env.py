"""The machine, versions and load a benchmark ran with, and where its results go (stdlib only).

Used by the peer benchmarks and by ``run_all.py``; importable from any interpreter (the Quix
peer runs in its own virtual environment), so nothing here imports a third-party package.
"""

from __future__ import annotations

import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"

# Distributions whose versions the report records (those not installed are left out).
KEY_DISTRIBUTIONS = (
    "aiokafka",
    "faust-streaming",
    "msgspec",
    "numpy",
    "chdb",
    "clickhouse-connect",
    "pyarrow",
    "prometheus_client",
    "quixstreams",
    "confluent-kafka",
    "matplotlib",
)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def machine() -> dict[str, Any]:
    """CPU model, logical cores, RAM, kernel, Python: the facts a number needs beside it."""
    return {
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "ram_gib": _ram_gib(),
        "kernel": platform.release(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def versions(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Installed versions of the key libraries of this interpreter (plus ``extra``)."""
    out = {"python": platform.python_version()}
    for dist in KEY_DISTRIBUTIONS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    out.update(extra or {})
    return out


def write_result(name: str, doc: dict[str, Any], *, tiny: bool = False) -> Path:
    """Write ``benchmarks/results/<name>.json`` (``<name>.tiny.json`` for a --tiny check)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / (f"{name}.tiny.json" if tiny else f"{name}.json")
    record = {
        "benchmark": name,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "versions": versions(),
        **doc,
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path
