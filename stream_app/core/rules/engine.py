"""The rule engine: the public entry point tying evaluation, pipeline health and emission.

See the package docstring for the interface. Per call: a closed window is evaluated in event
time (a window end not newer than the last one of its stream is skipped and counted; so are
aggregates of another window or size), then wall-clock housekeeping runs: pipeline health and
its alert, firing events held back by a silence that ended, re-sends, due notifications.
After a restore or a rules change, state the current rules do not explain is dropped and such
alerts that fired are resolved (``endsAt`` = the call's wall clock).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from schemas.aggregates import WindowAggregate
from schemas.alerts import AlertEvent, AlertStatus
from schemas.rules import AbsenceRule, BaselineRule, Rule, RuleSet, ScopeLevel
from stream_app.core.rules.emitter import Emitter
from stream_app.core.rules.errors import StateError
from stream_app.core.rules.evaluation import Evaluator, WindowContext
from stream_app.core.rules.events import alert_labels, default_templates, make_event
from stream_app.core.rules.events import render_annotations as _render
from stream_app.core.rules.grouping import Grouper
from stream_app.core.rules.lifecycle import AlertState, Phase
from stream_app.core.rules.options import EngineOptions
from stream_app.core.rules.output import EngineOutput, EngineStats
from stream_app.core.rules.pipeline import (
    PIPELINE_RULE_ID,
    PipelineStatus,
    pipeline_alert_labels,
    pipeline_annotations,
)
from stream_app.core.rules.scopes import ScopeRef
from stream_app.core.rules.state import EngineState, dump_state, load_state

_SCOPE_STREAM: frozenset[ScopeLevel] = frozenset({"pool_region", "pool", "region", "fleet"})
_PROXY_STREAM: frozenset[ScopeLevel] = frozenset({"proxy"})
_PIPELINE_SCOPE = ScopeRef("fleet")


class RuleEngine:
    """Pure, deterministic alert rule evaluation; every clock is passed in."""

    def __init__(
        self,
        rules: RuleSet,
        options: EngineOptions | None = None,
        *,
        state: Mapping[str, Any] | None = None,
    ) -> None:
        self._options = options or EngineOptions()
        self.stats = EngineStats()
        grouper = Grouper(rules.grouping)
        self._state = EngineState()
        if state is not None:
            self._state, groups = load_state(state)
            try:
                grouper.load(groups)
            except (ValueError, KeyError, TypeError) as exc:
                raise StateError(f"cannot restore notification groups: {exc}") from exc
        self._emitter = Emitter(grouper, self.stats, self._annotate)
        self._evaluator = Evaluator(
            self._state, self.stats, self._emitter, self._options.max_scopes_per_rule
        )
        self._reconcile_due = state is not None
        # After a restart the first window of a stream counts as one window for absence, not
        # as the whole downtime: nothing was observed while the process was down.
        self._resumed_streams = set(self._state.last_window_end_ms)
        self._install(rules)
        if state is None:
            self._state.baseline_signatures = self._signatures()

    @property
    def rules(self) -> RuleSet:
        return self._rules

    def evaluate_window(
        self,
        aggregates: Sequence[WindowAggregate],
        *,
        window_end_ms: int,
        now_ms: int,
        per_proxy: bool = False,
    ) -> EngineOutput:
        """Evaluate the rules on the aggregates of the window ending at ``window_end_ms``.

        ``per_proxy``: the aggregates are the per-proxy stream (``proxy_window_s``) and only
        proxy-level rules evaluate; otherwise pool x region aggregates (``window_s``) feed the
        pool_region, pool, region and fleet levels this instance evaluates.
        """
        out = self._begin(now_ms)
        stream = "proxies" if per_proxy else "scopes"
        window_s = self._options.proxy_window_s if per_proxy else self._options.window_s
        last = self._state.last_window_end_ms.get(stream)
        if last is not None and window_end_ms <= last:
            self.stats.windows_out_of_order += 1
            return self._finish(now_ms, out)
        self._state.last_window_end_ms[stream] = window_end_ms
        self.stats.windows_evaluated += 1
        valid = [
            a
            for a in aggregates
            if a.window_end_ms == window_end_ms
            and a.window_s == window_s
            and (a.scope.proxy_id is not None) is per_proxy
        ]
        self.stats.aggregates_ignored += len(aggregates) - len(valid)
        window_ms = window_s * 1000
        elapsed = 1
        if last is not None and stream not in self._resumed_streams:
            elapsed = max(1, (window_end_ms - last) // window_ms)
        self._resumed_streams.discard(stream)
        ctx = WindowContext(window_end_ms - window_ms, window_end_ms, window_s, elapsed, now_ms)
        levels = self._options.levels & (_PROXY_STREAM if per_proxy else _SCOPE_STREAM)
        self._evaluator.evaluate(self._active, levels, valid, ctx, out)
        return self._finish(now_ms, out)

    def set_pipeline_status(self, status: PipelineStatus, *, now_ms: int) -> EngineOutput:
        """Report the pipeline's lag, sink state and watermark (see :mod:`.pipeline`)."""
        self._state.health.report(status)
        return self._finish(now_ms, self._begin(now_ms))

    def tick(self, now_ms: int) -> EngineOutput:
        """Wall-clock housekeeping: group waits, re-sends, silences ending, staleness."""
        return self._finish(now_ms, self._begin(now_ms))

    def replace_rules(self, rules: RuleSet, *, now_ms: int) -> EngineOutput:
        """Switch to a new rule set (hot reload). Alerts of removed, disabled or relabelled
        rules resolve; baselines whose rule parameters changed start over."""
        self._install(rules)
        self._reconcile_due = True
        return self._finish(now_ms, self._begin(now_ms))

    def release_pools(self, pools: frozenset[str]) -> int:
        """Forget every pool-scoped state of ``pools`` (this worker no longer owns them).

        For a partition rebalance: without it, absence rules here would see the pools as
        silent. Nothing is emitted; the new owner re-fires a still-breaching alert with the same
        fingerprint. Region and fleet scopes are kept. Returns how many entries were dropped.
        """
        dropped = 0
        for per_rule in (self._state.alerts, self._state.absence, self._state.baselines):
            for entries in per_rule.values():
                for key in [k for k in entries if ScopeRef.from_key(k).pool in pools]:
                    del entries[key]
                    dropped += 1
        return dropped

    def next_deadline_ms(self) -> int | None:
        """The earliest wall-clock time at which :meth:`tick` has work (None: nothing timed)."""
        now_ms = self._state.last_now_ms or 0
        times = []
        emitter_at = self._emitter.next_deadline_ms(self._firing(), now_ms)
        if emitter_at is not None:
            times.append(emitter_at)
        health, config = self._state.health, self._rules.pipeline_health
        if health.degraded_since_ms is not None and self._state.pipeline_alert is None:
            times.append(health.degraded_since_ms + round(config.for_s * 1000))
        stale_at = health.stale_at_ms(config)
        if not health.degraded and stale_at is not None:
            times.append(stale_at)
        return min(times) if times else None

    def active_alerts(self, *, include_silenced: bool = False) -> list[AlertEvent]:
        """The alerts firing now, as firing events (e.g. for the API)."""
        url = self._options.generator_url
        return [
            make_event(s, AlertStatus.FIRING, ends_at_ms=None, generator_url=url)
            for s in self._firing()
            if s.sent or include_silenced
        ]

    def snapshot(self) -> dict[str, Any]:
        """The engine state as a JSON-compatible dict; pass it back as ``state=``."""
        return dump_state(self._state, self._emitter.grouper.to_dict())

    # -- internals ----------------------------------------------------------------------------

    def _install(self, rules: RuleSet) -> None:
        self._rules = rules
        self._active: list[Rule] = [r for r in rules.rules if r.enabled]
        self._by_id: dict[str, Rule] = {r.id: r for r in self._active}
        self._defaults = {r.id: default_templates(r) for r in self._active}
        self._emitter.configure(rules, self._options.generator_url)

    def _signatures(self) -> dict[str, str]:
        return {r.id: _signature(r) for r in self._active if isinstance(r, BaselineRule)}

    def _annotate(self, state: AlertState) -> None:
        """Render annotations with the latest values (kept as they were if the rule is gone)."""
        if state.rule_id == PIPELINE_RULE_ID:
            config = self._rules.pipeline_health
            state.annotations = pipeline_annotations(config, self._state.health)
            return
        rule = self._by_id.get(state.rule_id)
        if rule is not None and _still_explained(rule, state):
            window_s = (
                self._options.proxy_window_s if rule.level == "proxy" else (self._options.window_s)
            )
            state.annotations = _render(rule, state, window_s, self._defaults[rule.id])

    def _firing(self) -> list[AlertState]:
        firing = [
            s for states in self._state.alerts.values() for s in states.values()
            if s.phase is Phase.FIRING
        ]  # fmt: skip
        if self._state.pipeline_alert is not None:
            firing.append(self._state.pipeline_alert)
        return firing

    def _begin(self, now_ms: int) -> EngineOutput:
        out = EngineOutput()
        self._state.last_now_ms = now_ms
        if self._reconcile_due:
            self._reconcile_due = False
            self._reconcile(now_ms, out)
        self._refresh_pipeline(now_ms, out)
        return out

    def _finish(self, now_ms: int, out: EngineOutput) -> EngineOutput:
        self._emitter.flush(self._firing(), now_ms, out)
        return out

    def _refresh_pipeline(self, now_ms: int, out: EngineOutput) -> None:
        health, config = self._state.health, self._rules.pipeline_health
        was_degraded = bool(health.reasons)
        degraded = bool(health.assess(now_ms, config))
        if degraded and not was_degraded:
            self.stats.pipeline_degradations += 1
        alert = self._state.pipeline_alert
        if alert is not None:
            alert.value = health.worst_delay_ms(now_ms)
            if not degraded:
                self._state.pipeline_alert = None
                self._emitter.resolve(alert, now_ms, now_ms, out)
            return
        since = health.degraded_since_ms
        if since is None or now_ms - since < round(config.for_s * 1000):
            return
        alert = AlertState(
            rule_id=PIPELINE_RULE_ID,
            scope=_PIPELINE_SCOPE,
            phase=Phase.FIRING,
            active_at_ms=since,
            window_start_ms=None,
            window_end_ms=None,
            fired_at_ms=now_ms,
            value=health.worst_delay_ms(now_ms),
            labels=pipeline_alert_labels(config),
        )
        self._state.pipeline_alert = alert
        self._emitter.fire(alert, now_ms, out)

    def _reconcile(self, now_ms: int, out: EngineOutput) -> None:
        """Forget state the current rules do not explain; resolve such alerts that fired."""
        for rule_id in list(self._state.alerts):
            states = self._state.alerts[rule_id]
            for key, state in list(states.items()):
                if _still_explained(self._by_id.get(rule_id), state):
                    continue
                del states[key]
                if state.phase is Phase.FIRING:
                    self._emitter.resolve(state, now_ms, now_ms, out, annotate=False)
            if not states:
                del self._state.alerts[rule_id]
        for rule_id in list(self._state.absence):
            rule = self._by_id.get(rule_id)
            tracks = self._state.absence[rule_id]
            for key in list(tracks):
                if not isinstance(rule, AbsenceRule) or not _fits(rule, ScopeRef.from_key(key)):
                    del tracks[key]
            if not tracks:
                del self._state.absence[rule_id]
        signatures = self._state.baseline_signatures
        for rule_id in list(self._state.baselines):
            rule = self._by_id.get(rule_id)
            if not isinstance(rule, BaselineRule) or signatures.get(rule_id) != _signature(rule):
                del self._state.baselines[rule_id]
        self._state.baseline_signatures = self._signatures()
        alert = self._state.pipeline_alert
        if alert is not None and alert.labels != pipeline_alert_labels(self._rules.pipeline_health):
            self._state.pipeline_alert = None
            self._emitter.resolve(alert, now_ms, now_ms, out, annotate=False)


def _still_explained(rule: Rule | None, state: AlertState) -> bool:
    """Whether ``rule`` (as it is now) still produces the alert ``state`` is about."""
    if rule is None or not _fits(rule, state.scope):
        return False
    return state.phase is Phase.PENDING or state.labels == alert_labels(rule, state.scope)


def _fits(rule: Rule, scope: ScopeRef) -> bool:
    if scope.level != rule.level:
        return False
    sel = rule.selector
    if scope.pool is not None and not sel.matches_pool(scope.pool):
        return False
    return scope.region is None or sel.matches_region(scope.region)


def _signature(rule: BaselineRule) -> str:
    """What a learnt baseline depends on: change any of it and the baseline starts over."""
    parts = (
        rule.metric.value,
        rule.outcome.value if rule.outcome else "",
        rule.level,
        rule.selector.model_dump_json(),
        rule.baseline.model_dump_json(),
    )
    return "|".join(parts)
