"""Generate the JSON Schemas of the public contracts into ``schemas/jsonschema/``.

Run ``python -m schemas.generate`` (or ``make schemas``) after changing a model; a test fails when
the committed files differ from what the models generate.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import msgspec
from pydantic import BaseModel

OUTPUT_DIR = Path(__file__).parent / "jsonschema"

# (file name, module, model name): every public contract that crosses a process boundary.
CONTRACTS: tuple[tuple[str, str, str], ...] = (
    ("request_event.v1.json", "schemas.events", "RequestEvent"),
    ("event_batch.v1.json", "schemas.events", "EventBatch"),
    ("window_aggregate.v1.json", "schemas.aggregates", "WindowAggregate"),
    ("alert_event.v1.json", "schemas.alerts", "AlertEvent"),
    ("rules_file.v1.json", "schemas.rules", "RulesFile"),
)


# (file name, module, msgspec struct name): wire contracts defined as msgspec structs.
STRUCT_CONTRACTS: tuple[tuple[str, str, str], ...] = (
    ("event_batch.v2.json", "schemas.wire_columns", "WireColumnBatch"),
)


def _model(module: str, name: str) -> type[BaseModel]:
    model = getattr(importlib.import_module(module), name)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{module}.{name} is not a pydantic model")
    return model


def render() -> dict[str, str]:
    """Return ``{file name: JSON text}`` for every contract model."""
    out: dict[str, str] = {}
    for file_name, module, name in CONTRACTS:
        model = _model(module, name)
        schema = model.model_json_schema(mode="serialization")
        schema["$id"] = f"https://proxywhirl-metrics.dev/schemas/{file_name}"
        out[file_name] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    for file_name, module, name in STRUCT_CONTRACTS:
        struct = getattr(importlib.import_module(module), name)
        schema = msgspec.json.schema(struct)
        schema["$id"] = f"https://proxywhirl-metrics.dev/schemas/{file_name}"
        out[file_name] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def main() -> int:
    OUTPUT_DIR.mkdir(exist_ok=True)
    rendered = render()
    for file_name, text in rendered.items():
        (OUTPUT_DIR / file_name).write_text(text, encoding="utf-8")
    for stale in OUTPUT_DIR.glob("*.json"):
        if stale.name not in rendered:
            stale.unlink()
    print(f"wrote {len(rendered)} schemas to {OUTPUT_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
