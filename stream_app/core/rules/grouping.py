"""Notification grouping (Alertmanager's dispatch semantics, on the wall clock we are given).

Alerts whose ``group_by`` labels have the same values form one group (``['...']``: every alert
alone). A group's first notification waits ``group_wait_s`` after its first firing alert, so
simultaneous breaches of one rule across many scopes become one notification; later changes
(a new firing alert, a resolution of a notified one) wait until ``group_interval_s`` after the
previous notification; with no change, a group with firing alerts is notified again every
``repeat_interval_s``. A notification carries every firing alert of the group plus those
resolved since the previous one. An alert that resolves before it was ever notified is dropped
silently (a flap within the group wait is not news). Empty groups disappear.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from schemas.alerts import ZERO_TIME, AlertEvent, AlertStatus
from schemas.rules import GroupingConfig

ALL_LABELS = "..."


@dataclass(frozen=True, slots=True)
class Notification:
    """One group's alerts, ready to deliver (webhook, chat)."""

    group_key: str
    group_labels: dict[str, str]
    status: AlertStatus
    alerts: tuple[AlertEvent, ...]
    common_labels: dict[str, str]
    common_annotations: dict[str, str]

    @property
    def firing(self) -> tuple[AlertEvent, ...]:
        return tuple(a for a in self.alerts if a.status is AlertStatus.FIRING)

    @property
    def resolved(self) -> tuple[AlertEvent, ...]:
        return tuple(a for a in self.alerts if a.status is AlertStatus.RESOLVED)

    def to_webhook_payload(self, receiver: str, external_url: str) -> dict[str, object]:
        """The body Alertmanager 0.25 posts to a webhook receiver (``version: "4"``)."""
        alerts = []
        for alert in self.alerts:
            body = alert.to_alertmanager()
            body["status"] = alert.status.value
            body["endsAt"] = _rfc3339(alert.ends_at)
            body["fingerprint"] = alert.fingerprint
            alerts.append(body)
        return {
            "receiver": receiver,
            "status": self.status.value,
            "alerts": alerts,
            "groupLabels": dict(self.group_labels),
            "commonLabels": dict(self.common_labels),
            "commonAnnotations": dict(self.common_annotations),
            "externalURL": external_url,
            "version": "4",
            "groupKey": self.group_key,
            "truncatedAlerts": 0,
        }


def _rfc3339(value: datetime | None) -> str:
    if value is None or value == ZERO_TIME:
        return "0001-01-01T00:00:00Z"
    text = value.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


@dataclass(slots=True)
class _Group:
    key: str
    labels: dict[str, str]
    alerts: dict[str, AlertEvent] = field(default_factory=dict)
    notified: set[str] = field(default_factory=set)
    flush_at_ms: int | None = None
    last_flush_ms: int | None = None


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = maps[0]
    return {k: v for k, v in sorted(first.items()) if all(m.get(k) == v for m in maps[1:])}


class Grouper:
    """Groups alert state changes into notifications."""

    __slots__ = ("_config", "_groups")

    def __init__(self, config: GroupingConfig) -> None:
        self._config = config
        self._groups: dict[str, _Group] = {}

    def configure(self, config: GroupingConfig) -> None:
        """New settings (hot reload); existing groups keep their alerts and timers."""
        self._config = config

    def _group_labels(self, labels: dict[str, str]) -> dict[str, str]:
        if ALL_LABELS in self._config.group_by:
            return dict(sorted(labels.items()))
        return {name: labels.get(name, "") for name in sorted(self._config.group_by)}

    def add(self, event: AlertEvent, now_ms: int) -> None:
        """Take a firing or resolved event of one alert."""
        group_labels = self._group_labels(event.labels)
        key = "{}:{" + ", ".join(f"{k}={json.dumps(v)}" for k, v in group_labels.items()) + "}"
        group = self._groups.get(key)
        fp = event.fingerprint
        if event.status is AlertStatus.RESOLVED:
            if group is None or fp not in group.notified:
                if group is not None:
                    group.alerts.pop(fp, None)
                return
            group.alerts[fp] = event
            self._schedule(group, now_ms)
            return
        if group is None:
            group = self._groups[key] = _Group(key, group_labels)
        previous = group.alerts.get(fp)
        group.alerts[fp] = event
        if fp in group.notified and previous is not None and previous.status is event.status:
            return  # already notified as firing: a re-send is not news
        self._schedule(group, now_ms)

    def _schedule(self, group: _Group, now_ms: int) -> None:
        if group.flush_at_ms is not None:
            return
        if group.last_flush_ms is None:
            group.flush_at_ms = now_ms + round(self._config.group_wait_s * 1000)
        else:
            interval_ms = round(self._config.group_interval_s * 1000)
            group.flush_at_ms = max(now_ms, group.last_flush_ms + interval_ms)

    def _repeat_at_ms(self, group: _Group) -> int | None:
        if group.last_flush_ms is None or group.flush_at_ms is not None or not group.notified:
            return None
        return group.last_flush_ms + round(self._config.repeat_interval_s * 1000)

    def due(self, now_ms: int) -> list[Notification]:
        """Notifications whose time has come, in group key order."""
        out: list[Notification] = []
        for key in sorted(self._groups):
            group = self._groups[key]
            repeat_at = self._repeat_at_ms(group)
            flush = group.flush_at_ms is not None and now_ms >= group.flush_at_ms
            if not flush and (repeat_at is None or now_ms < repeat_at):
                continue
            alerts = sorted(group.alerts.values(), key=lambda a: sorted(a.labels.items()))
            group.flush_at_ms = None
            group.last_flush_ms = now_ms
            group.notified = {a.fingerprint for a in alerts if a.status is AlertStatus.FIRING}
            group.alerts = {a.fingerprint: a for a in alerts if a.status is AlertStatus.FIRING}
            if not group.alerts:
                del self._groups[key]
            if not alerts:
                continue
            firing = any(a.status is AlertStatus.FIRING for a in alerts)
            out.append(
                Notification(
                    group_key=key,
                    group_labels=dict(group.labels),
                    status=AlertStatus.FIRING if firing else AlertStatus.RESOLVED,
                    alerts=tuple(alerts),
                    common_labels=_common([a.labels for a in alerts]),
                    common_annotations=_common([a.annotations for a in alerts]),
                )
            )
        return out

    def next_deadline_ms(self) -> int | None:
        """The earliest wall-clock time :meth:`due` may return something."""
        times = [g.flush_at_ms for g in self._groups.values() if g.flush_at_ms is not None]
        times.extend(t for g in self._groups.values() if (t := self._repeat_at_ms(g)) is not None)
        return min(times) if times else None

    def __len__(self) -> int:
        return len(self._groups)

    def to_dict(self) -> list[dict[str, Any]]:
        return [
            {
                "key": g.key,
                "labels": g.labels,
                "alerts": [
                    a.model_dump(mode="json", exclude={"fingerprint"}) for a in g.alerts.values()
                ],
                "notified": sorted(g.notified),
                "flush_at_ms": g.flush_at_ms,
                "last_flush_ms": g.last_flush_ms,
            }
            for g in self._groups.values()
        ]

    def load(self, groups: list[dict[str, Any]]) -> None:
        """Restore :meth:`to_dict` output; raise ValueError / pydantic errors when malformed."""
        self._groups = {}
        for data in groups:
            alerts = [AlertEvent.model_validate(a) for a in data["alerts"]]
            group = _Group(
                key=str(data["key"]),
                labels={str(k): str(v) for k, v in dict(data["labels"]).items()},
                alerts={a.fingerprint: a for a in alerts},
                notified={str(fp) for fp in data["notified"]},
                flush_at_ms=None if data["flush_at_ms"] is None else int(data["flush_at_ms"]),
                last_flush_ms=None if data["last_flush_ms"] is None else int(data["last_flush_ms"]),
            )
            self._groups[group.key] = group
