"""Render ``docs/configuration.md`` from the settings classes themselves.

Every service and component has one pydantic-settings class; this module lists their fields with
the environment variable, type, default and description, so the reference cannot drift from the
code (a test compares the committed file with :func:`render`). Run
``python -m stream_app.config_reference`` after changing a settings class.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import types
import typing
from pathlib import Path

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"

# (title, module, class, what it configures)
SETTINGS: tuple[tuple[str, str, str, str], ...] = (
    (
        "Embedded service (`serve`, `demo`)",
        "stream_app.embedded.settings",
        "EmbeddedSettings",
        "The one-process service: pipeline, embedded ClickHouse (and the demo's simulated fleet).",
    ),
    (
        "HTTP ingest (`serve`, `demo`, `api`)",
        "stream_app.serve.settings",
        "IngestSettings",
        "POST /api/v1/ingest: body limits, Retry-After, the inbox's deduplication and "
        "durability; in distributed mode, the Kafka cluster ingest forwards to.",
    ),
    (
        "Stream worker (`worker`)",
        "stream_app.worker.settings",
        "WorkerSettings",
        "The Faust worker of the distributed runtime.",
    ),
    (
        "Pipeline (windows and flushing)",
        "stream_app.settings",
        "PipelineSettings",
        "Nested in both services: `PWM_PIPELINE__WINDOW_S`, `PWM_WORKER_PIPELINE__WINDOW_S`.",
    ),
    (
        "Storage (ClickHouse)",
        "stream_app.storage.settings",
        "StorageSettings",
        "Where and how aggregates are stored: embedded chDB or a ClickHouse server.",
    ),
    (
        "API (`api`)",
        "api.settings",
        "ApiSettings",
        "The HTTP service: /metrics of the latest settled windows, /healthz, /readyz.",
    ),
    (
        "Alerting",
        "stream_app.alerting.settings",
        "AlertingSettings",
        "Rules file, delivery targets and retries.",
    ),
    (
        "Producer (fleet hosts)",
        "producer.settings",
        "ProducerSettings",
        "The library inside ProxyWhirl processes.",
    ),
    (
        "Producer Kafka transport",
        "producer.kafka_settings",
        "KafkaTransportSettings",
        "Batch envelopes to Kafka, with the on-disk spool for outages.",
    ),
    (
        "Producer HTTP transport",
        "producer.http_settings",
        "HttpTransportSettings",
        "Batch envelopes to a `serve` process over HTTP, with the same on-disk spool.",
    ),
    (
        "ProxyWhirl integration",
        "producer.integrations.proxywhirl_settings",
        "ProxyWhirlSettings",
        "How ProxyWhirl requests become events.",
    ),
    (
        "Fleet simulator (`simulate`, demo)",
        "stream_app.simulator.settings",
        "SimulatorSettings",
        "The simulated fleet.",
    ),
)


def _type_name(annotation: object) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(annotation))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        return "(computed)"
    if field.default is PydanticUndefined:
        return "**required**"
    if isinstance(field.default, SecretStr):
        return "(secret)"
    if isinstance(field.default, BaseModel):
        return "(nested)"
    return f"`{field.default!r}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _rows(model: type[BaseModel], env_prefix: str, nested: str) -> list[str]:
    rows: list[str] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(_rows(annotation, f"{env_prefix}{name.upper()}{nested}", nested))
            continue
        rows.append(
            f"| `{env_prefix}{name.upper()}` | {_cell(_type_name(annotation))} | "
            f"{_cell(_default(field))} | {_cell(field.description or '')} |"
        )
    return rows


def render() -> str:
    out = [
        "# Configuration reference",
        "",
        "Generated from the settings classes by `python -m stream_app.config_reference`; do not",
        "edit by hand. Every setting is read from the environment (and, for the services, from",
        "command-line flags where they exist) and validated when the process starts: an invalid",
        "value stops it with a message naming the setting. Nested settings use `__`.",
        "",
    ]
    for title, module, name, what in SETTINGS:
        model = getattr(importlib.import_module(module), name)
        config = model.model_config
        prefix = str(config.get("env_prefix", ""))
        nested = str(config.get("env_nested_delimiter") or "__")
        out += [f"## {title}", "", f"{what} Class `{module}.{name}`.", ""]
        out += ["| variable | type | default | description |", "|---|---|---|---|"]
        out += _rows(model, prefix, nested)
        out.append("")
    return "\n".join(out)


def main(argv: typing.Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stream_app.config_reference",
        description=f"Write {OUTPUT.name} from the settings classes.",
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the file is out of date"
    )
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT} is out of date: run python -m stream_app.config_reference")
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
