"""Request bodies of the Grafana JSON datasource (simpod-json-datasource), as Grafana sends them.

The shapes follow the plugin's contract (its ``openapi.yaml``): ``/metrics`` and
``/metric-payload-options`` carry the current ``metric`` and ``payload``, ``/query`` a
``range``, ``intervalMs``, ``maxDataPoints`` and ``targets`` (each a ``target`` name, a
``refId`` and a ``payload``), ``/variable`` a ``payload`` (``{"target": ...}`` or the JSON the
user typed) and ``/tag-values`` a ``key``. Grafana 10, 11 and 12 differ in details, all accepted:

- ad-hoc filters come as ``filters`` (Grafana 11+) or ``adhocFilters`` (older): both are read;
- a ``payload`` is an object, a JSON string (the code editor's text) or absent;
- a payload value is a string, a list (a multi-value variable in ``json`` format), ``a,b``
  (``csv`` format) or a ``(a|b)`` alternation (``regex`` format, what the builder sends);
- unknown fields (``datasource``, ``scopedVars``, ``requestId``, ``range.raw``...) are ignored.

Anything malformed is a 422 problem naming the field; nothing unvalidated reaches the query layer.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from api.routes.params import MAX_SPAN_MS

__all__ = [
    "AdHocFilter",
    "AnnotationRequest",
    "GrafanaRange",
    "MetricsRequest",
    "PayloadOptionsRequest",
    "QueryRequest",
    "QueryTarget",
    "TagValuesRequest",
    "VariableRequest",
    "payload_values",
]

_MAX_MS = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp() * 1000)
_ALL = frozenset({"", "*", ".*", "$__all"})
_ALTERNATION = re.compile(r"^\((.*)\)$")


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


def _as_payload(value: Any) -> dict[str, Any]:
    """A payload as sent (object, JSON text, empty or absent) -> an object."""
    if value is None:
        return {}
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"payload is not JSON: {exc.msg}") from exc
    if not isinstance(value, dict):
        raise ValueError("payload must be a JSON object")
    return value


def _unescape_regex(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def payload_values(value: Any) -> list[str] | None:
    """The values a payload key selects: None for all (absent, empty, ``All``, ``$__all``).

    ``"a"`` -> ``["a"]``; ``["a", "b"]`` -> both; ``"a,b"`` (Grafana's ``csv`` format of a
    multi-value variable), ``"(a|b)"`` (its ``regex`` format) and ``"{a,b}"`` (``glob``) -> both.
    """
    if value is None:
        return None
    if isinstance(value, list):
        items = [str(v) for v in value]
    elif isinstance(value, str | int | float):
        text = str(value).strip()
        alternation = _ALTERNATION.match(text)
        if alternation is not None:
            items = [_unescape_regex(p) for p in alternation.group(1).split("|")]
        elif text.startswith("{") and text.endswith("}") and "," in text:
            items = text[1:-1].split(",")
        elif "," in text:  # names never hold a comma: ${var:csv}
            items = text.split(",")
        else:
            items = [_unescape_regex(text) if "\\" in text else text]
    else:
        raise ValueError("a payload value must be a string or a list of strings")
    items = [i.strip() for i in items]
    if not items or any(i in _ALL for i in items):
        return None
    return list(dict.fromkeys(items))


def _whole_number(value: Any) -> Any:
    """A JSON number as an int (NaN and infinities are refused, not crashed on)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return int(value)
    return value


def _epoch_ms(value: Any) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(_whole_number(value))
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"not a time: {value!r} (ISO 8601 or epoch ms)") from exc
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return int(parsed.timestamp() * 1000)
    raise ValueError("a time must be ISO 8601 text or epoch milliseconds")


class GrafanaRange(_Body):
    """The dashboard's time range, resolved by Grafana (``raw`` keeps ``now-6h``: ignored)."""

    from_ms: int = Field(alias="from", description="Range start (ISO 8601 or epoch ms)")
    to_ms: int = Field(alias="to", description="Range end (ISO 8601 or epoch ms)")

    @field_validator("from_ms", "to_ms", mode="before")
    @classmethod
    def _time(cls, value: Any) -> int:
        return _epoch_ms(value)

    @model_validator(mode="after")
    def _bounded(self) -> GrafanaRange:
        if not 0 <= self.from_ms <= _MAX_MS or not 0 <= self.to_ms <= _MAX_MS:
            raise ValueError("must be between 1970-01-01 and 2100-01-01")
        if self.from_ms >= self.to_ms:
            raise ValueError("from must be before to")
        if self.to_ms - self.from_ms > MAX_SPAN_MS:
            raise ValueError("at most ten years")
        return self


class AdHocFilter(_Body):
    """One ad-hoc filter (``key``, ``operator``, ``value``); ``values`` with Grafana 11's
    one-of operators (``=|``, ``!=|``); its ``condition`` is ignored."""

    key: str = Field(max_length=64)
    operator: str = Field(default="=", max_length=16)
    value: str = Field(default="", max_length=256)
    values: list[str] | None = Field(default=None, max_length=1_000)

    @field_validator("value", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value


class QueryTarget(_Body):
    """One query of a panel (or of an annotation: ``refId`` ``Anno``)."""

    target: str | None = Field(default=None, max_length=128)
    ref_id: str | None = Field(default=None, alias="refId", max_length=128)
    payload: dict[str, Any] = Field(default_factory=dict)
    hide: bool = False

    @field_validator("payload", mode="before")
    @classmethod
    def _payload(cls, value: Any) -> dict[str, Any]:
        return _as_payload(value)

    @field_validator("target", mode="before")
    @classmethod
    def _target(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value


class QueryRequest(_Body):
    """``POST /query``: a panel's (or an annotation's) queries over a range."""

    range: GrafanaRange
    interval_ms: int | None = Field(default=None, alias="intervalMs", ge=0)
    max_data_points: int | None = Field(default=None, alias="maxDataPoints", ge=0)
    targets: list[QueryTarget] = Field(default_factory=list, max_length=50)
    filters: list[AdHocFilter] | None = None
    adhoc_filters: list[AdHocFilter] | None = Field(default=None, alias="adhocFilters")

    @field_validator("interval_ms", "max_data_points", mode="before")
    @classmethod
    def _whole(cls, value: Any) -> Any:
        return _whole_number(value)

    @property
    def ad_hoc(self) -> list[AdHocFilter]:
        """The ad-hoc filters, whichever name they came under."""
        return [*(self.filters or ()), *(self.adhoc_filters or ())]


class MetricsRequest(_Body):
    """``POST /metrics``: the metric selected in the query builder and its payload."""

    metric: str | None = Field(default=None, max_length=128)
    payload: dict[str, Any] = Field(default_factory=dict)

    @field_validator("payload", mode="before")
    @classmethod
    def _payload(cls, value: Any) -> dict[str, Any]:
        return _as_payload(value)


class PayloadOptionsRequest(MetricsRequest):
    """``POST /metric-payload-options``: the options of payload ``name`` of ``metric``."""

    name: str = Field(max_length=64)


class VariableRequest(_Body):
    """``POST /variable``: ``payload`` is ``{"target": "<query text>"}`` or the user's JSON."""

    payload: dict[str, Any] = Field(default_factory=dict)
    range: GrafanaRange | None = None

    @field_validator("payload", mode="before")
    @classmethod
    def _payload(cls, value: Any) -> dict[str, Any]:
        if isinstance(value, str) and not value.lstrip().startswith("{"):
            return {"target": value}
        return _as_payload(value)


class TagValuesRequest(_Body):
    """``POST /tag-values``: the values of ad-hoc key ``key``."""

    key: str = Field(max_length=64)
    filters: list[AdHocFilter] | None = None


class AnnotationRequest(_Body):
    """``POST /annotations`` (the plugin's versions before 0.3, and Simple JSON): the
    annotation's ``query`` text is a JSON payload (``{"pool": "a", "severity": "page"}``)."""

    range: GrafanaRange
    annotation: dict[str, Any] = Field(default_factory=dict)

    @property
    def payload(self) -> dict[str, Any]:
        return _as_payload(self.annotation.get("query"))
