"""What engine calls return (:class:`EngineOutput`) and the engine's counters (``EngineStats``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from schemas.alerts import AlertEvent
from stream_app.core.rules.grouping import Notification


@dataclass(slots=True)
class EngineOutput:
    """What one engine call produced.

    ``events``: firing and resolved state changes, in order (publish to the alerts topic and
    Alertmanager). ``resends``: firing alerts re-sent after ``resend_interval_s`` (Alertmanager
    needs them; other consumers may skip them). ``notifications``: groups due for delivery.
    """

    events: list[AlertEvent] = field(default_factory=list)
    resends: list[AlertEvent] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.events or self.resends or self.notifications)


@dataclass(slots=True)
class EngineStats:
    """Counters of recurring conditions (the runtime exports them as metrics)."""

    windows_evaluated: int = 0
    windows_out_of_order: int = 0
    aggregates_ignored: int = 0
    evaluations_held: int = 0
    pending_dropped_by_hold: int = 0
    alerts_fired: int = 0
    alerts_resolved: int = 0
    alerts_silenced: int = 0
    resends: int = 0
    notifications: int = 0
    scopes_untracked: int = 0
    pipeline_degradations: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)
