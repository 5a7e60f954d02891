"""Alert events (schema version 1): Alertmanager-shaped, published on ``<prefix>.alerts``.

An alert is identified by its label set; its fingerprint is computed exactly as Alertmanager
computes it (FNV-1a 64 over the label pairs sorted by name, each as ``name 0xff value 0xff``), so
the same (rule, scope) is one alert here, in Alertmanager and in every downstream consumer.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK64 = 0xFFFFFFFFFFFFFFFF
_SEPARATOR = b"\xff"

ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
"""Alertmanager's "no end time" (``0001-01-01T00:00:00Z``)."""


def fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's fingerprint of a label set: 16 lowercase hex digits."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        for chunk in (name.encode(), _SEPARATOR, labels[name].encode(), _SEPARATOR):
            for byte in chunk:
                h ^= byte
                h = (h * _FNV_PRIME) & _MASK64
    return f"{h:016x}"


class AlertStatus(enum.StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    PAGE = "page"


class AlertEvent(BaseModel):
    """One state change (or periodic re-send) of one alert."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    labels: Annotated[
        dict[str, str],
        Field(description="alertname, severity, rule_id, pool, region, proxy_id when relevant"),
    ]
    annotations: Annotated[
        dict[str, str],
        Field(description="summary, description, runbook_url, next_steps"),
    ] = Field(default_factory=dict)
    status: AlertStatus
    starts_at: datetime
    ends_at: datetime | None = None
    value: float | None = None
    threshold: float | None = None
    baseline: float | None = None
    window_start_ms: Annotated[int, Field(ge=0)] | None = None
    window_end_ms: Annotated[int, Field(ge=0)] | None = None
    generator_url: str = ""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    @model_validator(mode="before")
    @classmethod
    def _accept_serialised_fingerprint(cls, data: object) -> object:
        """Read back our own JSON (as on the alerts topic): its computed ``fingerprint`` must
        match the labels and is then dropped."""
        if isinstance(data, dict) and "fingerprint" in data:
            data = dict(data)
            given = data.pop("fingerprint")
            labels = data.get("labels")
            if isinstance(labels, dict) and given != fingerprint(labels):
                raise ValueError(f"fingerprint {given!r} does not match the labels")
        return data

    def to_alertmanager(self) -> dict[str, object]:
        """The body item of Alertmanager API v2 ``POST /api/v2/alerts``."""
        body: dict[str, object] = {
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": _rfc3339(self.starts_at),
            "generatorURL": self.generator_url,
        }
        if self.ends_at is not None:
            body["endsAt"] = _rfc3339(self.ends_at)
        return body


def _rfc3339(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
