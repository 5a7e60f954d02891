"""What Grafana and the ClickHouse plugin turn a panel's SQL into before ClickHouse sees it.

Two steps, in the order they happen:

1. Grafana interpolates the dashboard variables (in the browser): the variable syntax of
   ``TemplateSrv`` / scenes' ``sceneInterpolator`` (``$name``, ``${name}``, ``${name:format}``,
   ``[[name]]``, ``[[name:format]]``) with the formats of scenes' ``formatRegistry``
   (``singlequote``: each value in ``'...'`` with ``'`` escaped as ``\\'``, joined by ``,``;
   ``sqlstring``: ``'`` doubled and ``"`` escaped as ``\\"``; ``csv``: values joined by ``,``
   unquoted; ``json``; ``raw``; ``pipe``). A multi-valued variable is a list even with one
   value selected. "All" without a custom All value is the list of every option; with one
   (``allValue``), that text is inserted as is, unformatted, except for the ``text``
   (``All``), ``percentencode`` and ``queryparam`` formats (scenes' ``CustomAllValue``).
   Names that are no variable (``$__timeFilter``, ``$__interval_s``...) are left alone.
2. The plugin (grafana-clickhouse-datasource v4, ``pkg/macros/macros.go``) expands its macros
   on the server: ``$__timeFilter(c)`` -> ``c >= toDateTime(from_s) AND c <= toDateTime(to_s)``,
   ``$__timeFilter_ms(c)`` -> ``c >= fromUnixTimestamp64Milli(from_ms) AND c <=
   fromUnixTimestamp64Milli(to_ms)``, ``$__fromTime`` / ``$__toTime`` -> ``toDateTime(s)``,
   ``$__fromTime_ms`` / ``$__toTime_ms`` -> ``fromUnixTimestamp64Milli(ms)``,
   ``$__dateFilter(c)`` -> ``c >= toDate('YYYY-MM-DD') AND c <= toDate(...)``,
   ``$__timeInterval(c)`` -> ``toStartOfInterval(toDateTime(c), INTERVAL n second)`` and
   ``$__interval_s`` -> ``n``, with ``n = max(interval seconds, 1)`` truncated to an integer.

An unknown macro, or a variable used without an explicit format, is an error here: the
dashboards must not depend on a datasource's default format.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

__all__ = [
    "ALL",
    "Expansion",
    "GrafanaVariable",
    "Selection",
    "expand",
    "expand_macros",
    "interpolate",
]

ALL = "$__all"
"""Grafana's value for "All" selected."""

Selection = str | Sequence[str]
"""A variable's current value: one value, several, or ``[ALL]`` / ``ALL``."""

# scenes' variableRegex (and TemplateSrv's before it)
_VARIABLE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}"
)


@dataclass(frozen=True, slots=True)
class GrafanaVariable:
    """The parts of a dashboard variable interpolation uses."""

    name: str
    multi: bool
    include_all: bool
    all_value: str | None
    options: tuple[str, ...] = ()
    """Every value the variable offers (what "All" means without a custom All value)."""

    @classmethod
    def of(cls, model: Mapping[str, object], options: Sequence[str] = ()) -> GrafanaVariable:
        all_value = model.get("allValue")
        return cls(
            name=str(model["name"]),
            multi=bool(model.get("multi")),
            include_all=bool(model.get("includeAll")),
            all_value=str(all_value) if all_value else None,
            options=tuple(options),
        )


def _is_all(value: Selection) -> bool:
    return value == ALL or (not isinstance(value, str) and list(value)[:1] == [ALL])


def _quote_single(value: str) -> str:
    return "'" + value.replace("'", "\\'") + "'"


def _quote_sql(value: str) -> str:
    return "'" + value.replace("'", "''").replace('"', '\\"') + "'"


def _format(value: str | list[str], fmt: str) -> str:
    values = value if isinstance(value, list) else None
    match fmt:
        case "singlequote":
            return (
                ",".join(map(_quote_single, values))
                if values is not None
                else _quote_single(str(value))
            )
        case "sqlstring":
            return (
                ",".join(map(_quote_sql, values)) if values is not None else _quote_sql(str(value))
            )
        case "csv" | "join":
            return ",".join(values) if values is not None else str(value)
        case "pipe":
            return "|".join(values) if values is not None else str(value)
        case "json":
            return json.dumps(values, separators=(",", ":")) if values is not None else str(value)
        case "raw":
            return str(value) if values is None else ",".join(values)
        case "percentencode":
            text = "{" + ",".join(values) + "}" if values is not None else str(value)
            return quote(text, safe="-_.~")
    raise AssertionError(f"format {fmt!r} is not one the dashboards are tested with")


def _custom_all(variable: GrafanaVariable, fmt: str) -> str:
    assert variable.all_value is not None
    if fmt == "text":
        return "All"
    if fmt == "percentencode":
        return quote(variable.all_value, safe="-_.~")
    if fmt == "queryparam":
        return f"var-{variable.name}=All"
    return variable.all_value


def interpolate(
    text: str, variables: Mapping[str, GrafanaVariable], values: Mapping[str, Selection]
) -> str:
    """Step 1: the dashboard variables, as Grafana replaces them."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(6)
        variable = variables.get(name)
        if variable is None:
            return match.group(0)  # a macro or a built-in the datasource expands
        if fmt is None:
            raise AssertionError(f"${name} is used without a format: {text[:200]}")
        value = values[name]
        if _is_all(value):
            assert variable.include_all, f"{name} has no All"
            if variable.all_value is not None:
                return _custom_all(variable, fmt)
            value = list(variable.options)
        if variable.multi:
            selected = [value] if isinstance(value, str) else list(value)
            return _format(selected, fmt)
        assert isinstance(value, str), f"{name} is single-valued"
        return _format(value, fmt)

    return _VARIABLE.sub(replace, text)


@dataclass(frozen=True, slots=True)
class Expansion:
    """The time range and interval of one query, as the plugin receives them."""

    from_ms: int
    to_ms: int
    interval_ms: int

    @property
    def interval_s(self) -> int:
        return max(self.interval_ms // 1000, 1)


_MACRO = re.compile(r"\$__(\w+)")


def _arguments(text: str, start: int) -> tuple[list[str], int]:
    """The comma-separated arguments of ``(...)`` at ``start`` (nested parentheses kept)."""
    depth, args, current = 0, [], ""
    for i in range(start, len(text)):
        char = text[i]
        if char == "(":
            depth += 1
            if depth == 1:
                continue
        elif char == ")":
            depth -= 1
            if depth == 0:
                args.append(current.strip())
                return args, i + 1
        elif char == "," and depth == 1:
            args.append(current.strip())
            current = ""
            continue
        current += char
    raise AssertionError(f"unbalanced macro arguments: {text[start : start + 80]}")


def expand_macros(sql: str, span: Expansion) -> str:
    """Step 2: the plugin's macros."""
    from_s, to_s = span.from_ms // 1000, span.to_ms // 1000

    def date(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")

    out, position = [], 0
    for match in _MACRO.finditer(sql):
        if match.start() < position:
            continue
        name, end = match.group(1), match.end()
        args: list[str] = []
        if end < len(sql) and sql[end] == "(":
            args, end = _arguments(sql, end)
        match name, args:
            case "fromTime", []:
                text = f"toDateTime({from_s})"
            case "toTime", []:
                text = f"toDateTime({to_s})"
            case "fromTime_ms", []:
                text = f"fromUnixTimestamp64Milli({span.from_ms})"
            case "toTime_ms", []:
                text = f"fromUnixTimestamp64Milli({span.to_ms})"
            case "timeFilter", [column]:
                text = f"{column} >= toDateTime({from_s}) AND {column} <= toDateTime({to_s})"
            case "timeFilter_ms", [column]:
                text = (
                    f"{column} >= fromUnixTimestamp64Milli({span.from_ms}) AND {column} <= "
                    f"fromUnixTimestamp64Milli({span.to_ms})"
                )
            case "dateFilter", [column]:
                text = (
                    f"{column} >= toDate('{date(span.from_ms)}') AND "
                    f"{column} <= toDate('{date(span.to_ms)}')"
                )
            case "timeInterval", [column]:
                text = f"toStartOfInterval(toDateTime({column}), INTERVAL {span.interval_s} second)"
            case "interval_s", []:
                text = str(span.interval_s)
            case _:
                raise AssertionError(f"macro $__{name}({', '.join(args)}) is not the plugin's")
        out.append(sql[position : match.start()])
        out.append(text)
        position = end
    out.append(sql[position:])
    return "".join(out)


def expand(
    sql: str,
    span: Expansion,
    variables: Mapping[str, GrafanaVariable],
    values: Mapping[str, Selection],
) -> str:
    """Both steps; nothing of Grafana's syntax may be left."""
    expanded = expand_macros(interpolate(sql, variables, values), span)
    assert "$" not in expanded, expanded[:400]
    assert "[[" not in expanded, expanded[:400]
    return expanded
