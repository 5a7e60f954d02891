"""Which rollup tier and which step a time series is read at.

A series over ``[start, end)`` is answered in steps of ``step_s`` seconds, so that it has at
most ``max_points`` points (1,500 by default: a chart's width, and a bounded response). The step
is the smallest "round" step (10 s, 1 min, 5 min, 1 h, 1 d ...) giving that many points; the tier
read is the coarsest one whose rows still fit in a step (the fewest rows scanned for the same
answer): a 1 h range reads ``agg_10s`` every 10 s, 30 days read ``agg_1m`` every 30 min, 90
days ``agg_1h`` every 2 h.

Retention decides too: a tier whose TTL (:class:`Retention`, from the storage settings) has
already dropped the start of the range is skipped for a coarser one (2 years read ``agg_1d``,
whose rows are kept 5 years, even though a 12 h step would fit ``agg_1h``), and the step grows
to that tier's row length if needed. Pure functions: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from stream_app.storage.settings import StorageSettings
from stream_app.storage.tables import RESOLUTION_SECONDS, Resolution

__all__ = [
    "DEFAULT_MAX_POINTS",
    "ROUND_STEPS_S",
    "Retention",
    "TierChoice",
    "choose_tier",
]

DEFAULT_MAX_POINTS = 1_500

_DAY_S = 86_400
ROUND_STEPS_S: tuple[int, ...] = (
    10, 20, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200,
    _DAY_S, 2 * _DAY_S, 7 * _DAY_S, 14 * _DAY_S, 30 * _DAY_S, 90 * _DAY_S, 365 * _DAY_S,
)  # fmt: skip
"""Steps a series may use, in seconds."""


@dataclass(frozen=True, slots=True)
class Retention:
    """How many days each tier keeps (the tables' TTLs)."""

    days: dict[Resolution, int]

    @classmethod
    def from_settings(cls, settings: StorageSettings) -> Retention:
        return cls(
            {
                Resolution.WINDOW: settings.ttl_10s_days,
                Resolution.MINUTE: settings.ttl_1m_days,
                Resolution.HOUR: settings.ttl_1h_days,
                Resolution.DAY: settings.ttl_1d_days,
            }
        )

    @classmethod
    def default(cls) -> Retention:
        """The TTLs storage uses unless configured otherwise."""
        fields = StorageSettings.model_fields
        return cls(
            {
                Resolution.WINDOW: int(fields["ttl_10s_days"].default),
                Resolution.MINUTE: int(fields["ttl_1m_days"].default),
                Resolution.HOUR: int(fields["ttl_1h_days"].default),
                Resolution.DAY: int(fields["ttl_1d_days"].default),
            }
        )

    def covers(self, resolution: Resolution, start_ms: int, now_ms: int) -> bool:
        """Whether ``resolution`` still holds rows starting at ``start_ms``."""
        return start_ms >= now_ms - self.days[resolution] * _DAY_S * 1000


@dataclass(frozen=True, slots=True)
class TierChoice:
    """Where and how a series is read: ``points`` steps of ``step_s`` from ``start_ms``."""

    resolution: Resolution
    step_s: int
    start_ms: int
    """The requested start aligned down to the step."""
    end_ms: int
    """The requested end aligned up to the step (exclusive)."""

    @property
    def points(self) -> int:
        return (self.end_ms - self.start_ms) // (self.step_s * 1000)

    def steps_ms(self) -> range:
        """Start of every step, in epoch milliseconds."""
        return range(self.start_ms, self.end_ms, self.step_s * 1000)


def _row_s(resolution: Resolution, window_s: int) -> int:
    if resolution is Resolution.WINDOW:
        return max(window_s, RESOLUTION_SECONDS[resolution])
    return RESOLUTION_SECONDS[resolution]


def _round_step(needed_s: int, multiple_of_s: int) -> int:
    for step in ROUND_STEPS_S:
        if step >= needed_s and step % multiple_of_s == 0:
            return step
    return math.ceil(needed_s / multiple_of_s) * multiple_of_s


def choose_tier(
    start_ms: int,
    end_ms: int,
    *,
    now_ms: int,
    retention: Retention,
    max_points: int = DEFAULT_MAX_POINTS,
    min_step_s: int = 0,
    window_s: int = 10,
) -> TierChoice:
    """The tier and step of a series over ``[start_ms, end_ms)`` (see the module doc).

    ``min_step_s`` asks for a coarser step than needed; ``window_s`` is the length of the
    stream windows (the rows of the finest tier).
    """
    if end_ms <= start_ms:
        raise ValueError(f"end_ms ({end_ms}) must be after start_ms ({start_ms})")
    if max_points < 2:
        raise ValueError("max_points must be at least 2")
    span_s = math.ceil((end_ms - start_ms) / 1000)
    # one point less than allowed: aligning both ends to the step can add one
    needed_s = max(math.ceil(span_s / (max_points - 1)), min_step_s, 1)
    tiers = list(Resolution)  # finest first
    kept = [r for r in tiers if retention.covers(r, start_ms, now_ms)] or [Resolution.DAY]
    finest = kept[0]
    step_s = _round_step(needed_s, _row_s(finest, window_s))
    resolution = finest
    for candidate in kept:
        row_s = _row_s(candidate, window_s)
        if row_s <= step_s and step_s % row_s == 0:
            resolution = candidate
    step_ms = step_s * 1000
    aligned_start = start_ms // step_ms * step_ms
    aligned_end = -(-end_ms // step_ms) * step_ms
    return TierChoice(resolution, step_s, aligned_start, aligned_end)
