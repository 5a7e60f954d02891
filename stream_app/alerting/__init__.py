"""Alert delivery and rule operations: the adapters around the pure rule engine.

- :mod:`.dispatcher`: :class:`~.dispatcher.AlertDispatcher`, one bounded queue per sink; the
  window-processing loop only calls ``publish`` / ``publish_notification`` (``put_nowait``).
- Sinks: :mod:`.kafka_sink` (``<prefix>.alerts``), :mod:`.alertmanager_sink` (API v2 with
  periodic re-send), :mod:`.webhook_sink` (generic JSON or Slack, events or grouped
  notifications; :mod:`.slack_format`), :mod:`.history` (ClickHouse alert history and the
  rule-change audit). Retries: :mod:`.backoff`; dead letter: :mod:`.dead_letter`.
- :mod:`.rules_watcher`: hot reload of the YAML rules file, audited (:mod:`.rule_changes`).
- :mod:`.placement`: per-scope rules in the worker owning the scope, fleet-wide rules once per
  window from ClickHouse under one leader (:class:`~.placement.LeaderGate`), state handed over
  on failover (:mod:`.engine_state`).
- :mod:`.prometheus_rules`: threshold rules rendered as Prometheus alerting rules.
- :mod:`.settings` (:class:`~.settings.AlertingSettings`) and :mod:`.service` (wiring);
  :mod:`.metrics` (``pwm_alert_*``, ``pwm_rules_*``).

Errors are listed in :mod:`.errors`.
"""
