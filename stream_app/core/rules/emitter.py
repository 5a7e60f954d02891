"""Turning alert state changes into output: silences, re-sends, notification grouping.

A firing alert emits a firing event unless a silence mutes it (then it emits when the silence
ends, if still firing); a firing alert that went out is re-sent every ``resend_interval_s``
while not muted; a resolution is emitted only for an alert whose firing went out. Every
emitted state change also feeds the :class:`~.grouping.Grouper`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from schemas.alerts import AlertStatus
from schemas.rules import RuleSet
from stream_app.core.rules.events import make_event
from stream_app.core.rules.grouping import Grouper
from stream_app.core.rules.lifecycle import AlertState
from stream_app.core.rules.output import EngineOutput, EngineStats
from stream_app.core.rules.silences import Silencer


class Emitter:
    """Emits events for alert states and collects due notifications."""

    def __init__(
        self, grouper: Grouper, stats: EngineStats, annotate: Callable[[AlertState], None]
    ) -> None:
        self.grouper = grouper
        self._stats = stats
        self._annotate = annotate
        self._silencer = Silencer(())
        self._generator_url = ""
        self._resend_ms = 60_000

    def configure(self, rules: RuleSet, generator_url: str) -> None:
        self._silencer = Silencer(rules.silences)
        self.grouper.configure(rules.grouping)
        self._generator_url = generator_url
        self._resend_ms = round(rules.grouping.resend_interval_s * 1000)

    def fire(self, state: AlertState, now_ms: int, out: EngineOutput) -> None:
        """A new firing alert (``state.labels`` set)."""
        self._stats.alerts_fired += 1
        if not self.send(state, now_ms, out, resend=False):
            self._stats.alerts_silenced += 1

    def send(self, state: AlertState, now_ms: int, out: EngineOutput, *, resend: bool) -> bool:
        """Emit a firing (or re-sent) event unless a silence mutes it; return whether it went."""
        if self._silencer.silenced_by(state.labels, now_ms) is not None:
            return False
        self._annotate(state)
        event = make_event(
            state, AlertStatus.FIRING, ends_at_ms=None, generator_url=self._generator_url
        )
        if resend:
            out.resends.append(event)
            self._stats.resends += 1
        else:
            out.events.append(event)
            self.grouper.add(event, now_ms)
        state.sent = True
        state.last_sent_ms = now_ms
        return True

    def resolve(
        self,
        state: AlertState,
        ends_at_ms: int,
        now_ms: int,
        out: EngineOutput,
        *,
        annotate: bool = True,
    ) -> None:
        """A resolved alert (emitted only if its firing went out)."""
        self._stats.alerts_resolved += 1
        if not state.sent:
            return
        if annotate:
            self._annotate(state)
        event = make_event(
            state, AlertStatus.RESOLVED, ends_at_ms=ends_at_ms, generator_url=self._generator_url
        )
        out.events.append(event)
        self.grouper.add(event, now_ms)

    def flush(self, firing: Iterable[AlertState], now_ms: int, out: EngineOutput) -> None:
        """Late firing events (silence over), due re-sends and due notifications."""
        for state in firing:
            if not state.sent:
                self.send(state, now_ms, out, resend=False)
            elif state.last_sent_ms is None or now_ms - state.last_sent_ms >= self._resend_ms:
                self.send(state, now_ms, out, resend=True)
        due = self.grouper.due(now_ms)
        self._stats.notifications += len(due)
        out.notifications.extend(due)

    def next_deadline_ms(self, firing: Iterable[AlertState], now_ms: int) -> int | None:
        """When :meth:`flush` next has something to do."""
        times: list[int] = []
        grouped = self.grouper.next_deadline_ms()
        if grouped is not None:
            times.append(grouped)
        for state in firing:
            if state.sent and state.last_sent_ms is not None:
                times.append(state.last_sent_ms + self._resend_ms)
            elif (ends := self._silencer.next_end_ms(now_ms)) is not None:
                times.append(ends)
        return min(times) if times else None
