"""The engine's mutable state and its snapshot format (version 1, plain JSON-compatible dicts).

Everything the engine must not forget across a restart: pending and firing alerts (with what
was sent), absence tracks, baselines (with the signature of the rule parameters they were learnt
under), the last evaluated window per stream, pipeline health and its alert, and the
notification groups waiting for their group wait. :func:`dump_state` / :func:`load_state`
convert; a document that does not validate raises :class:`~.errors.StateError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stream_app.core.rules.absence import AbsenceTrack
from stream_app.core.rules.baselines import Baseline, baseline_from_dict
from stream_app.core.rules.errors import StateError
from stream_app.core.rules.lifecycle import AlertState, Phase
from stream_app.core.rules.pipeline import PipelineHealth
from stream_app.core.rules.scopes import ScopeRef

STATE_VERSION = 1

_Doc = ConfigDict(extra="forbid")
_Ms = Annotated[int, Field(ge=0)]


@dataclass(slots=True)
class EngineState:
    """All mutable engine state; per-rule maps are keyed by rule id, then scope key."""

    alerts: dict[str, dict[str, AlertState]] = field(default_factory=dict)
    absence: dict[str, dict[str, AbsenceTrack]] = field(default_factory=dict)
    baselines: dict[str, dict[str, Baseline]] = field(default_factory=dict)
    baseline_signatures: dict[str, str] = field(default_factory=dict)
    last_window_end_ms: dict[str, int] = field(default_factory=dict)
    health: PipelineHealth = field(default_factory=PipelineHealth)
    pipeline_alert: AlertState | None = None
    last_now_ms: int | None = None


class _AlertDoc(BaseModel):
    model_config = _Doc

    rule_id: str
    scope: str
    phase: Phase
    active_at_ms: int
    window_start_ms: int | None
    window_end_ms: int | None
    fired_at_ms: int | None = None
    clear_since_ms: int | None = None
    value: float | None = None
    threshold: float | None = None
    baseline: float | None = None
    sigma: float | None = None
    requests: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    sent: bool = False
    last_sent_ms: int | None = None


class _AbsenceDoc(BaseModel):
    model_config = _Doc

    rule_id: str
    scope: str
    last_seen_end_ms: _Ms
    silent_windows: Annotated[int, Field(ge=0)]


class _BaselineDoc(BaseModel):
    model_config = _Doc

    rule_id: str
    scope: str
    data: dict[str, Any]


class _StateDoc(BaseModel):
    model_config = _Doc

    version: Literal[1]
    last_window_end_ms: dict[str, _Ms] = Field(default_factory=dict)
    last_now_ms: int | None = None
    alerts: list[_AlertDoc] = Field(default_factory=list)
    absence: list[_AbsenceDoc] = Field(default_factory=list)
    baselines: list[_BaselineDoc] = Field(default_factory=list)
    baseline_signatures: dict[str, str] = Field(default_factory=dict)
    pipeline: dict[str, Any] = Field(default_factory=dict)
    pipeline_alert: _AlertDoc | None = None
    groups: list[dict[str, Any]] = Field(default_factory=list)


def _alert_to_dict(state: AlertState) -> dict[str, Any]:
    return {
        "rule_id": state.rule_id,
        "scope": state.scope.key(),
        "phase": state.phase.value,
        "active_at_ms": state.active_at_ms,
        "window_start_ms": state.window_start_ms,
        "window_end_ms": state.window_end_ms,
        "fired_at_ms": state.fired_at_ms,
        "clear_since_ms": state.clear_since_ms,
        "value": state.value,
        "threshold": state.threshold,
        "baseline": state.baseline,
        "sigma": state.sigma,
        "requests": state.requests,
        "labels": dict(state.labels),
        "annotations": dict(state.annotations),
        "sent": state.sent,
        "last_sent_ms": state.last_sent_ms,
    }


def _alert_from_doc(doc: _AlertDoc) -> AlertState:
    data = doc.model_dump()
    data["scope"] = ScopeRef.from_key(doc.scope)
    return AlertState(**data)


def dump_state(state: EngineState, groups: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON-compatible snapshot of ``state`` plus the grouper's ``groups``."""
    return {
        "version": STATE_VERSION,
        "last_window_end_ms": dict(state.last_window_end_ms),
        "last_now_ms": state.last_now_ms,
        "alerts": [_alert_to_dict(a) for states in state.alerts.values() for a in states.values()],
        "absence": [
            {
                "rule_id": rule_id,
                "scope": key,
                "last_seen_end_ms": t.last_seen_end_ms,
                "silent_windows": t.silent_windows,
            }
            for rule_id, tracks in state.absence.items()
            for key, t in tracks.items()
        ],
        "baselines": [
            {"rule_id": rule_id, "scope": key, "data": b.to_dict()}
            for rule_id, baselines in state.baselines.items()
            for key, b in baselines.items()
        ],
        "baseline_signatures": dict(state.baseline_signatures),
        "pipeline": state.health.to_dict(),
        "pipeline_alert": None
        if state.pipeline_alert is None
        else _alert_to_dict(state.pipeline_alert),
        "groups": groups,
    }


def load_state(data: object) -> tuple[EngineState, list[dict[str, Any]]]:
    """Rebuild the state from :func:`dump_state` output; raise StateError when it is invalid."""
    try:
        doc = _StateDoc.model_validate(data)
        state = EngineState(
            last_window_end_ms=dict(doc.last_window_end_ms),
            last_now_ms=doc.last_now_ms,
            baseline_signatures=dict(doc.baseline_signatures),
            health=PipelineHealth.from_dict(doc.pipeline),
            pipeline_alert=None
            if doc.pipeline_alert is None
            else _alert_from_doc(doc.pipeline_alert),
        )
        for alert in doc.alerts:
            state.alerts.setdefault(alert.rule_id, {})[alert.scope] = _alert_from_doc(alert)
        for track in doc.absence:
            ScopeRef.from_key(track.scope)
            state.absence.setdefault(track.rule_id, {})[track.scope] = AbsenceTrack(
                track.last_seen_end_ms, track.silent_windows
            )
        for base in doc.baselines:
            ScopeRef.from_key(base.scope)
            state.baselines.setdefault(base.rule_id, {})[base.scope] = baseline_from_dict(base.data)
    except (ValidationError, ValueError, KeyError, TypeError) as exc:
        raise StateError(f"cannot restore rule engine state: {exc}") from exc
    return state, doc.groups
