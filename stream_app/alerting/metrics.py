"""Prometheus metrics of the alerting adapters (delivery, rule reloads).

One :class:`AlertingMetrics` per process, registered in the registry it is given (the default
registry in services, a fresh one in tests). Recurring conditions are counters here, never a log
line per event.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge


class AlertingMetrics:
    """Counters and gauges of alert delivery and rule loading."""

    def __init__(self, registry: CollectorRegistry | None = REGISTRY) -> None:
        self.enqueued = Counter(
            "pwm_alert_enqueued",
            "Alert events accepted into a sink's queue",
            ["sink"],
            registry=registry,
        )
        self.dropped = Counter(
            "pwm_alert_dropped",
            "Alert events dropped (oldest first) because a sink's queue was full",
            ["sink"],
            registry=registry,
        )
        self.delivered = Counter(
            "pwm_alert_delivered",
            "Alert events a sink delivered",
            ["sink"],
            registry=registry,
        )
        self.retries = Counter(
            "pwm_alert_delivery_retries",
            "Delivery attempts that failed transiently and were retried",
            ["sink"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "pwm_alert_dead_lettered",
            "Alert events given up on (poison or attempts spent) and written to the dead letter",
            ["sink"],
            registry=registry,
        )
        self.queue_depth = Gauge(
            "pwm_alert_queue_depth",
            "Alert events waiting in a sink's queue",
            ["sink"],
            registry=registry,
        )
        self.resent = Counter(
            "pwm_alertmanager_resent",
            "Firing alerts re-sent to Alertmanager by the periodic re-send",
            registry=registry,
        )
        self.reload_errors = Counter(
            "pwm_rules_reload_errors",
            "Rules file reloads refused (the previous rules stayed in force)",
            registry=registry,
        )
        self.last_reload_ok = Gauge(
            "pwm_rules_last_reload_ok",
            "1 when the last rules file load succeeded, 0 when it was refused",
            registry=registry,
        )
        self.reloads = Counter(
            "pwm_rules_reloads",
            "Rules file versions loaded and put in force",
            registry=registry,
        )
        self.audit_failures = Counter(
            "pwm_rules_audit_write_failures",
            "Rule-change audit batches that could not be written",
            registry=registry,
        )
