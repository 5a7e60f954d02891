"""Annotation templates of alert rules: validated when the rules file loads, rendered per alert.

A template is text with ``{placeholder}`` fields in Python format syntax, restricted to plain
names from :data:`TEMPLATE_FIELDS` with an optional format spec (``{value:.1%}``,
``{threshold:.0f}``); ``{{`` and ``}}`` are literal braces. Attribute or index access
(``{value.real}``, ``{labels[0]}``) and conversions (``{value!r}``) are refused, so a rules file
can never reach into Python objects. A missing value (``None``, e.g. the value of an absence
alert) renders as ``n/a``; a spec that does not suit the value (``{pool:.1f}``) falls back to the
plain value instead of failing at alert time.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass

TEMPLATE_FIELDS = frozenset(
    {
        "alertname",
        "rule_id",
        "severity",
        "level",
        "scope",
        "pool",
        "region",
        "proxy_id",
        "metric",
        "outcome",
        "op",
        "value",
        "threshold",
        "baseline",
        "sigma",
        "window_s",
        "requests",
        "for_s",
    }
)
"""Every placeholder a template may use (what each means: see ``config/rules.example.yaml``)."""

SCOPE_FIELDS_BY_LEVEL: Mapping[str, frozenset[str]] = {
    "proxy": frozenset({"pool", "region", "proxy_id"}),
    "pool_region": frozenset({"pool", "region"}),
    "pool": frozenset({"pool"}),
    "region": frozenset({"region"}),
    "fleet": frozenset(),
}
"""The scope placeholders that have a value at each scope level."""

_SCOPE_FIELDS = frozenset({"pool", "region", "proxy_id"})
_MISSING = "n/a"
_FORMATTER = string.Formatter()


@dataclass(frozen=True, slots=True)
class Template:
    """A compiled template: literal text and ``(field, format spec)`` pairs."""

    source: str
    parts: tuple[tuple[str, str | None, str], ...]

    @property
    def fields(self) -> frozenset[str]:
        """The placeholders this template uses."""
        return frozenset(name for _, name, _ in self.parts if name is not None)

    def render(self, values: Mapping[str, object]) -> str:
        """Fill the placeholders from ``values`` (absent or None values render as ``n/a``)."""
        out: list[str] = []
        for literal, name, spec in self.parts:
            out.append(literal)
            if name is None:
                continue
            value = values.get(name)
            if value is None:
                out.append(_MISSING)
                continue
            try:
                out.append(format(value, spec))
            except (ValueError, TypeError):
                out.append(str(value))
        return "".join(out)


def compile_template(text: str) -> Template:
    """Parse and check ``text``; raise ValueError naming the offending placeholder."""
    try:
        parsed = list(_FORMATTER.parse(text))
    except ValueError as exc:
        raise ValueError(f"malformed template {text!r}: {exc}") from None
    parts: list[tuple[str, str | None, str]] = []
    for literal, name, spec, conversion in parsed:
        if name is None:
            parts.append((literal, None, ""))
            continue
        if conversion is not None:
            raise ValueError(f"placeholder {{{name}!{conversion}}}: conversions are not allowed")
        if name not in TEMPLATE_FIELDS:
            if not name.isidentifier():
                raise ValueError(
                    f"placeholder {{{name}}}: only plain names are allowed (no attribute, index "
                    "or positional fields)"
                )
            raise ValueError(
                f"unknown placeholder {{{name}}}; known: {', '.join(sorted(TEMPLATE_FIELDS))}"
            )
        spec = spec or ""
        if "{" in spec:
            raise ValueError(f"placeholder {{{name}}}: nested fields in a format spec")
        parts.append((literal, name, spec))
    return Template(text, tuple(parts))


def check_scope_fields(template: Template, level: str) -> None:
    """Raise ValueError when ``template`` uses a scope placeholder ``level`` has no value for."""
    unavailable = (template.fields & _SCOPE_FIELDS) - SCOPE_FIELDS_BY_LEVEL[level]
    if unavailable:
        names = ", ".join(f"{{{name}}}" for name in sorted(unavailable))
        raise ValueError(f"{names} has no value at scope level {level!r}")
