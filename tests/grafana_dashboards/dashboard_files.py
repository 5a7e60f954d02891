"""Where the provisioned dashboards and their generator live."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "docker/grafana"
DASHBOARDS = GRAFANA / "dashboards"

if str(GRAFANA) not in sys.path:  # the generator: docker/grafana/generate.py and dashgen/
    sys.path.insert(0, str(GRAFANA))


def load_dashboards() -> dict[str, dict[str, Any]]:
    """Every provisioned dashboard, by file stem."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}
