"""The life of one alert (one rule x one scope): inactive -> pending -> firing -> resolved.

Prometheus alerting-rule semantics, in event time (window boundaries):

- the first window in which the condition holds makes the alert *pending*, active since that
  window's start (for absence: since the end of the last window with traffic);
- it *fires* at the end of the first window at which the condition has held for ``for``
  (``window_end - active_at >= for_ms``): ``for_s: 30`` on 10 s windows fires on the third
  breaching window, ``for_s: 0`` on the first;
- a window where the condition does not hold (including "no data": too few requests, scope
  gone) drops a pending alert back to inactive, so a flapping scope never accumulates ``for``;
- a firing alert whose condition clears stays firing until the condition has been clear for
  ``keep_firing_for`` (``window_end - clear_since >= keep_firing_for_ms``); a breach meanwhile
  cancels the countdown; then it *resolves*.

Inactive alerts have no state at all. :func:`step` is pure apart from mutating the state it is
given.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from stream_app.core.rules.scopes import ScopeRef


class Phase(enum.StrEnum):
    PENDING = "pending"
    FIRING = "firing"


class Transition(enum.Enum):
    FIRED = "fired"
    RESOLVED = "resolved"


@dataclass(slots=True)
class Observation:
    """One evaluation of one rule for one scope in one window."""

    breach: bool
    window_start_ms: int
    window_end_ms: int
    value: float | None = None
    threshold: float | None = None
    baseline: float | None = None
    sigma: float | None = None
    requests: int | None = None
    breach_start_ms: int | None = None
    """When the breach began if not at this window's start (absence: last traffic)."""


@dataclass(slots=True)
class AlertState:
    """A pending or firing alert, with what the last evaluation saw."""

    rule_id: str
    scope: ScopeRef
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
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    sent: bool = False
    """The firing event went out (False while silenced: nothing to resolve downstream)."""
    last_sent_ms: int | None = None
    """Wall clock of the last firing (re-)send."""

    def record(self, obs: Observation) -> None:
        """Keep what the latest evaluation saw (for annotations and re-sends)."""
        self.window_start_ms = obs.window_start_ms
        self.window_end_ms = obs.window_end_ms
        self.value = obs.value
        self.threshold = obs.threshold
        self.baseline = obs.baseline
        self.sigma = obs.sigma
        self.requests = obs.requests


def step(
    state: AlertState | None,
    obs: Observation,
    *,
    rule_id: str,
    scope: ScopeRef,
    for_ms: int,
    keep_firing_for_ms: int,
) -> tuple[AlertState | None, Transition | None]:
    """Advance one alert by one observation.

    Returns the state to keep (None: inactive, forget it) and the transition that happened, if
    any. On ``RESOLVED`` the returned state is the resolved one (for its resolved event) and the
    caller forgets it.
    """
    if obs.breach:
        if state is None:
            start = obs.window_start_ms if obs.breach_start_ms is None else obs.breach_start_ms
            state = AlertState(
                rule_id=rule_id,
                scope=scope,
                phase=Phase.PENDING,
                active_at_ms=start,
                window_start_ms=obs.window_start_ms,
                window_end_ms=obs.window_end_ms,
            )
        state.record(obs)
        state.clear_since_ms = None
        if state.phase is Phase.PENDING and obs.window_end_ms - state.active_at_ms >= for_ms:
            state.phase = Phase.FIRING
            state.fired_at_ms = obs.window_end_ms
            return state, Transition.FIRED
        return state, None
    if state is None or state.phase is Phase.PENDING:
        return None, None
    state.record(obs)
    if keep_firing_for_ms > 0:
        if state.clear_since_ms is None:
            state.clear_since_ms = obs.window_start_ms
        if obs.window_end_ms - state.clear_since_ms < keep_firing_for_ms:
            return state, None
    return state, Transition.RESOLVED
