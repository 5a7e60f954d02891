"""Evaluation of one closed window: each rule of the window's levels over each scope it selects.

Threshold and baseline rules judge every selected scope of the window; scopes with an alert
but nothing in this window are "no data" (not a breach). Windows with fewer than the rule's
``min_requests`` are no data too. Absence rules count silent windows of scopes they have seen.
While the pipeline is degraded, rules that hold make no transition for affected scopes
(:mod:`.pipeline`). Scopes are visited in key order so output is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemas.aggregates import WindowAggregate
from schemas.rules import AbsenceRule, BaselineRule, Rule, ScopeLevel, ThresholdRule
from stream_app.core.rules.absence import AbsenceTrack
from stream_app.core.rules.baselines import new_baseline
from stream_app.core.rules.emitter import Emitter
from stream_app.core.rules.events import alert_labels
from stream_app.core.rules.lifecycle import AlertState, Observation, Phase, Transition, step
from stream_app.core.rules.metrics import compare, metric_value
from stream_app.core.rules.output import EngineOutput, EngineStats
from stream_app.core.rules.scopes import ScopeFilter, ScopeRef, Totals, rollup
from stream_app.core.rules.state import EngineState


@dataclass(frozen=True, slots=True)
class WindowContext:
    """The window being evaluated and the wall clock of the call."""

    start_ms: int
    end_ms: int
    window_s: int
    elapsed: int
    """Windows since the previous evaluation of this stream (> 1 after a gap)."""
    now_ms: int


class Evaluator:
    """Applies rules to one window's aggregates, mutating the engine state."""

    def __init__(
        self, state: EngineState, stats: EngineStats, emitter: Emitter, max_scopes: int
    ) -> None:
        self._state = state
        self._stats = stats
        self._emitter = emitter
        self._max_scopes = max_scopes
        self._filters: dict[tuple[tuple[str, ...], tuple[str, ...]], ScopeFilter] = {}

    def evaluate(
        self,
        rules: Sequence[Rule],
        levels: frozenset[ScopeLevel],
        aggregates: Sequence[WindowAggregate],
        ctx: WindowContext,
        out: EngineOutput,
    ) -> None:
        """Evaluate ``rules`` of ``levels`` on the window's aggregates."""
        cache: dict[tuple[object, ...], dict[ScopeRef, Totals]] = {}
        for rule in rules:
            if rule.level not in levels:
                continue
            patterns = (tuple(rule.selector.pool), tuple(rule.selector.region))
            totals = cache.get((rule.level, patterns))
            if totals is None:
                selected = self._filter(patterns, rule)
                totals = rollup(aggregates, rule.level, selected, ctx.window_s)
                cache[(rule.level, patterns)] = totals
            if isinstance(rule, AbsenceRule):
                self._absence(rule, totals, ctx, out)
            else:
                self._metric(rule, totals, ctx, out)

    def _filter(self, patterns: tuple[tuple[str, ...], tuple[str, ...]], rule: Rule) -> ScopeFilter:
        selected = self._filters.get(patterns)
        if selected is None:
            if len(self._filters) >= 1000:
                self._filters.clear()
            selected = self._filters[patterns] = ScopeFilter(rule.selector)
        return selected

    def _held(self, rule: Rule, scope: ScopeRef) -> bool:
        health = self._state.health
        return health.degraded and rule.holds_when_degraded and health.affects(scope)

    def _metric(
        self,
        rule: ThresholdRule | BaselineRule,
        totals: dict[ScopeRef, Totals],
        ctx: WindowContext,
        out: EngineOutput,
    ) -> None:
        states = self._state.alerts.setdefault(rule.id, {})
        min_requests = rule.effective_min_requests
        seen: set[str] = set()
        for key, scope, tot in sorted((s.key(), s, t) for s, t in totals.items()):
            seen.add(key)
            if self._held(rule, scope):
                self._hold(states, key)
                continue
            value = None
            if tot.requests >= min_requests:
                value = metric_value(tot, rule.metric, rule.outcome)
            obs = self._observe(rule, key, value, tot.requests, ctx)
            self._advance(rule, states, key, scope, obs, ctx, out)
        for key in [k for k in states if k not in seen]:
            state = states[key]
            if self._held(rule, state.scope):
                self._hold(states, key)
                continue
            no_data = Observation(False, ctx.start_ms, ctx.end_ms)
            self._advance(rule, states, key, state.scope, no_data, ctx, out)

    def _observe(
        self,
        rule: ThresholdRule | BaselineRule,
        key: str,
        value: float | None,
        requests: int,
        ctx: WindowContext,
    ) -> Observation:
        if isinstance(rule, ThresholdRule):
            breach = value is not None and compare(rule.op, value, rule.threshold)
            return Observation(
                breach, ctx.start_ms, ctx.end_ms, value, rule.threshold, requests=requests
            )
        if value is None:
            return Observation(False, ctx.start_ms, ctx.end_ms, requests=requests)
        baselines = self._state.baselines.setdefault(rule.id, {})
        base = baselines.get(key)
        if base is None:
            if len(baselines) >= self._max_scopes:
                self._stats.scopes_untracked += 1
                return Observation(False, ctx.start_ms, ctx.end_ms, value, requests=requests)
            base = baselines[key] = new_baseline(rule.baseline)
        verdict = base.judge(value, ctx.start_ms, rule.baseline)
        breach = verdict is not None and verdict.breach
        if verdict is None or not verdict.anomalous:
            base.learn(value, ctx.start_ms, rule.baseline)
        return Observation(
            breach,
            ctx.start_ms,
            ctx.end_ms,
            value,
            baseline=None if verdict is None else verdict.mean,
            sigma=None if verdict is None else verdict.sigma,
            requests=requests,
        )

    def _absence(
        self,
        rule: AbsenceRule,
        totals: dict[ScopeRef, Totals],
        ctx: WindowContext,
        out: EngineOutput,
    ) -> None:
        tracks = self._state.absence.setdefault(rule.id, {})
        states = self._state.alerts.setdefault(rule.id, {})
        present: set[str] = set()
        for key, scope in sorted((s.key(), s) for s, t in totals.items() if t.requests > 0):
            present.add(key)
            track = tracks.get(key)
            if track is not None:
                track.saw_traffic(ctx.end_ms)
            elif len(tracks) < self._max_scopes:
                tracks[key] = AbsenceTrack(ctx.end_ms)
            else:
                self._stats.scopes_untracked += 1
                continue
            if self._held(rule, scope):
                self._hold(states, key)
            elif key in states:
                alive = Observation(False, ctx.start_ms, ctx.end_ms, 0.0, requests=0)
                self._advance(rule, states, key, scope, alive, ctx, out)
        for key in sorted(k for k in tracks if k not in present):
            track, scope = tracks[key], ScopeRef.from_key(key)
            if self._held(rule, scope):
                self._hold(states, key)
                continue
            track.silent_windows += ctx.elapsed
            if track.forgotten(rule):
                del tracks[key]
                state = states.pop(key, None)
                if state is not None and state.phase is Phase.FIRING:
                    self._emitter.resolve(state, ctx.end_ms, ctx.now_ms, out)
                continue
            obs = track.observation(rule, ctx.start_ms, ctx.end_ms, ctx.window_s)
            self._advance(rule, states, key, scope, obs, ctx, out)

    def _advance(
        self,
        rule: Rule,
        states: dict[str, AlertState],
        key: str,
        scope: ScopeRef,
        obs: Observation,
        ctx: WindowContext,
        out: EngineOutput,
    ) -> None:
        state = states.get(key)
        if state is None and obs.breach and len(states) >= self._max_scopes:
            self._stats.scopes_untracked += 1
            return
        new, transition = step(
            state,
            obs,
            rule_id=rule.id,
            scope=scope,
            for_ms=rule.for_ms(ctx.window_s),
            keep_firing_for_ms=rule.keep_firing_for_ms,
        )
        if transition is Transition.RESOLVED and new is not None:
            del states[key]
            self._emitter.resolve(new, obs.window_end_ms, ctx.now_ms, out)
        elif new is None:
            states.pop(key, None)
        else:
            states[key] = new
            if transition is Transition.FIRED:
                new.labels = alert_labels(rule, scope)
                self._emitter.fire(new, ctx.now_ms, out)

    def _hold(self, states: dict[str, AlertState], key: str) -> None:
        """No transition from delayed data: pending drops back, keep-firing countdown resets."""
        self._stats.evaluations_held += 1
        state = states.get(key)
        if state is None:
            return
        if state.phase is Phase.PENDING:
            del states[key]
            self._stats.pending_dropped_by_hold += 1
        else:
            state.clear_since_ms = None
