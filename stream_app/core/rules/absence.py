"""Absence rules: a scope that had traffic and then stays silent for N windows.

Each (absence rule, scope) is tracked from the first window with traffic (``requests > 0``) on:
the end of the last window with traffic and the number of silent windows counted since. A window
without the scope (or an evaluation that skipped windows: the gap counts, window by window)
adds to the count unless the rule is held for a degraded pipeline; traffic resets it. The
condition holds from ``absence.windows`` silent windows on; the alert's ``startsAt`` is the end
of the last window with traffic and its value the seconds since then. With
``forget_after_windows`` a scope silent that long is forgotten and its alert resolved (a
decommissioned pool stops alerting).
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.rules import AbsenceRule
from stream_app.core.rules.lifecycle import Observation


@dataclass(slots=True)
class AbsenceTrack:
    """What is known about one scope for one absence rule."""

    last_seen_end_ms: int
    silent_windows: int = 0

    def saw_traffic(self, window_end_ms: int) -> None:
        self.last_seen_end_ms = window_end_ms
        self.silent_windows = 0

    def forgotten(self, rule: AbsenceRule) -> bool:
        limit = rule.absence.forget_after_windows
        return limit is not None and self.silent_windows >= limit

    def observation(
        self, rule: AbsenceRule, window_start_ms: int, window_end_ms: int, window_s: int
    ) -> Observation:
        """The rule's verdict for this scope after the silent windows counted so far."""
        return Observation(
            breach=self.silent_windows >= rule.absence.windows,
            window_start_ms=window_start_ms,
            window_end_ms=window_end_ms,
            value=(window_end_ms - self.last_seen_end_ms) / 1000,
            threshold=float(rule.absence.windows * window_s),
            requests=0,
            breach_start_ms=self.last_seen_end_ms,
        )
