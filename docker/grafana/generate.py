"""Writes the provisioned dashboards (docker/grafana/dashboards/*.json) from dashgen.

Run after changing anything under docker/grafana/dashgen:

    .venv/bin/python docker/grafana/generate.py

The JSON files are what Grafana provisions and what a team imports by hand (Dashboards >
New > Import); tests/grafana_dashboards checks they are up to date and runs every query.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from dashgen.build import DASHBOARDS  # noqa: E402

OUT = HERE / "dashboards"


def render(name: str) -> str:
    """The JSON text of one dashboard, as committed."""
    return json.dumps(DASHBOARDS[name]().to_json(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for stale in OUT.glob("*.json"):
        if stale.stem not in DASHBOARDS:
            stale.unlink()
    for name in DASHBOARDS:
        (OUT / f"{name}.json").write_text(render(name))
        print(f"wrote {OUT / name}.json")


if __name__ == "__main__":
    main()
