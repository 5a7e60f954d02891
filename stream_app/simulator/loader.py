"""Load a :class:`~stream_app.simulator.scenario.Scenario` from YAML, naming what is wrong.

Every failure becomes a :class:`~stream_app.simulator.errors.ScenarioError` whose message starts
with the source (file path) and names each offending field the way it is written in the file,
``incidents[2].error_rate`` or ``fleet.pools[0].rate_per_s``, with the reason. YAML syntax errors
give the line and column.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from stream_app.simulator.errors import ScenarioError
from stream_app.simulator.scenario import Scenario

__all__ = [
    "BUNDLED_DEMO_SCENARIO",
    "load_scenario",
    "parse_scenario",
    "scenario_from_data",
]

BUNDLED_DEMO_SCENARIO = "demo-fleet.yaml"
"""The demo scenario shipped inside this package (a copy of ``config/demo-fleet.yaml``)."""

_INCIDENT_KINDS = frozenset(
    {
        "error_spike",
        "latency_multiplier",
        "silence",
        "flap",
        "proxy_failure",
        "traffic_multiplier",
    }
)
_ROOT_FIELD = re.compile(r"^(?:Value error, )?([A-Za-z_][\w.\[\]]*): ")
_MAX_REPORTED = 10


def _field_path(loc: tuple[int | str, ...]) -> str:
    """``("incidents", 2, "error_spike", "error_rate")`` -> ``incidents[2].error_rate``."""
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif i > 0 and isinstance(loc[i - 1], int) and part in _INCIDENT_KINDS:
            continue  # the discriminated-union tag pydantic inserts; not a key in the file
        else:
            out += f".{part}" if out else part
    return out


def _from_validation_error(exc: ValidationError, source: str) -> ScenarioError:
    fields: list[str] = []
    lines: list[str] = []
    for error in exc.errors(include_url=False)[:_MAX_REPORTED]:
        field = _field_path(tuple(error["loc"]))
        message = str(error["msg"])
        # A model-level check names the field below the model it validates: "pools[0].name: ..."
        match = _ROOT_FIELD.match(message) if error["type"] == "value_error" else None
        if match is not None:
            field = f"{field}.{match.group(1)}" if field else match.group(1)
            message = message[match.end() :]
        else:
            message = message.removeprefix("Value error, ")
        fields.append(field or "<root>")
        lines.append(f"{field or '<root>'}: {message}")
    more = exc.error_count() - len(lines)
    if more > 0:
        lines.append(f"... and {more} more")
    return ScenarioError(f"{source}: invalid scenario: " + "; ".join(lines), tuple(fields))


def scenario_from_data(data: Any, source: str = "<scenario>") -> Scenario:
    """Validate already-parsed data (a mapping) into a :class:`Scenario`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(
            f"{source}: a scenario must be a mapping at the top level, got {type(data).__name__}",
            ("<root>",),
        )
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise _from_validation_error(exc, source) from exc


def parse_scenario(text: str, source: str = "<string>") -> Scenario:
    """Parse YAML text into a :class:`Scenario`."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(f"{source}: YAML syntax error{where}: {problem}") from exc
    return scenario_from_data(data, source)


def load_scenario(path: str | Path | None = None) -> Scenario:
    """Load a scenario file; ``None`` loads the bundled demo scenario."""
    if path is None:
        text = (
            resources.files("stream_app.simulator")
            .joinpath(BUNDLED_DEMO_SCENARIO)
            .read_text("utf-8")
        )
        return parse_scenario(text, f"<bundled {BUNDLED_DEMO_SCENARIO}>")
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{source}: cannot read scenario file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{source}: scenario file is not UTF-8: {exc.reason}") from exc
    return parse_scenario(text, source)
