"""Alert events for the alerting tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.alerts import AlertEvent, AlertStatus

T0 = datetime(2026, 11, 26, 21, 32, 7, tzinfo=UTC)


def event(
    pool: str = "poolA",
    *,
    status: AlertStatus = AlertStatus.FIRING,
    region: str = "eu",
    alertname: str = "ProxyPoolHighErrorRate",
    severity: str = "page",
    seq: int = 0,
    starts_at: datetime = T0,
    ends_at: datetime | None = None,
) -> AlertEvent:
    """A firing (or resolved) alert; ``seq`` goes into ``value`` to tell events apart."""
    if status is AlertStatus.RESOLVED and ends_at is None:
        ends_at = starts_at + timedelta(seconds=4)
    return AlertEvent(
        labels={"alertname": alertname, "pool": pool, "region": region, "severity": severity},
        annotations={"summary": "error rate 12% > 5%", "next_steps": "Check the pool's upstream"},
        status=status,
        starts_at=starts_at,
        ends_at=ends_at,
        value=float(seq),
        threshold=0.05,
        generator_url="http://analytics.local/alerts/x",
    )
