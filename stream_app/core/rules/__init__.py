"""The pure alert rule engine: closed windows and clocks in, alert events and notifications out.

Interface (names are stable; delivery, storage of state and file watching live outside the core)::

    from schemas.rules import parse_rules, RuleSet           # YAML -> validated RuleSet
    from stream_app.core.rules import RuleEngine, EngineOptions, PipelineStatus

    engine = RuleEngine(rule_set, EngineOptions(window_s=10, proxy_window_s=60))
    engine = RuleEngine(rule_set, options, state=saved_dict)  # restore (baselines survive)

    out = engine.evaluate_window(aggregates, window_end_ms=t, now_ms=wall)        # pool x region
    out = engine.evaluate_window(proxy_aggs, window_end_ms=t, now_ms=wall, per_proxy=True)
    out = engine.set_pipeline_status(PipelineStatus(lag_ms=..., sink_ok=..., watermark_ms=...),
                                     now_ms=wall)
    out = engine.tick(now_ms=wall)             # group wait, re-sends, silences ending, staleness
    out = engine.replace_rules(new_rule_set, now_ms=wall)  # hot reload; resolves removed rules
    engine.next_deadline_ms()                  # when tick() has something to do (or None)
    engine.release_pools(frozenset({"poolA"})) # rebalance: this worker no longer owns them
    state = engine.snapshot()                  # JSON-compatible dict; store it, pass it back
    engine.active_alerts()                     # firing alerts now (for the API)
    engine.stats                               # counters (EngineStats)

Every call returns an :class:`EngineOutput`:

- ``events``: :class:`schemas.alerts.AlertEvent` state changes (firing, resolved), in order;
  publish them on ``<prefix>.alerts`` and to Alertmanager.
- ``resends``: firing alerts re-sent because ``grouping.resend_interval_s`` passed (Alertmanager
  needs them; other consumers may skip them).
- ``notifications``: :class:`Notification` groups (Alertmanager-style grouping) whose group wait,
  group interval or repeat interval ran out; deliver them to webhooks / chat.

Call ``evaluate_window`` once per closed window end (also with an empty list when nothing closed:
absence counts on it; a skipped window end counts as silent too, except across a restart) and
``tick`` whenever ``next_deadline_ms`` is reached. Resolved events are emitted once; delivery
retries them. Window ends are event time; ``now_ms`` is wall clock (group wait, re-send,
silences, pipeline health). Nothing here reads a clock, sleeps, threads or does I/O.

Semantics in one place: ``for`` counts event time from the start of the first breaching window
(``for_s: 30`` on 10 s windows fires on the third one); a non-breaching or no-data window (fewer
than ``min_requests``, scope missing) drops a pending alert; ``keep_firing_for`` counts clear
event time; ``startsAt`` is when the condition began, ``endsAt`` the end of the resolving window.
Pool, region and fleet scopes add up the pool x region aggregates (:func:`merge_aggregates` does
the same for whole aggregates). Labels: alertname, severity, rule_id, rule labels, pool/region/
proxy_id as the level has them; fingerprint = Alertmanager's.

Modules: :mod:`.options`, :mod:`.output`, :mod:`.scopes` (scope references; merging pool x
region aggregates into pool, region and fleet totals), :mod:`.metrics`, :mod:`.lifecycle`
(pending/firing/keep_firing_for), :mod:`.baselines`, :mod:`.absence`, :mod:`.pipeline`,
:mod:`.silences`, :mod:`.grouping`, :mod:`.events`, :mod:`.emitter`, :mod:`.evaluation`,
:mod:`.state` (snapshot format), :mod:`.engine`. Errors: :mod:`.errors`.
"""

from stream_app.core.rules.engine import RuleEngine
from stream_app.core.rules.errors import RuleEngineError, StateError
from stream_app.core.rules.grouping import Notification
from stream_app.core.rules.options import EngineOptions
from stream_app.core.rules.output import EngineOutput, EngineStats
from stream_app.core.rules.pipeline import PIPELINE_RULE_ID, PipelineStatus, SkewTracker
from stream_app.core.rules.scopes import ScopeRef, merge_aggregates

__all__ = [
    "PIPELINE_RULE_ID",
    "EngineOptions",
    "EngineOutput",
    "EngineStats",
    "Notification",
    "PipelineStatus",
    "RuleEngine",
    "RuleEngineError",
    "ScopeRef",
    "SkewTracker",
    "StateError",
    "merge_aggregates",
]
