"""Per-scope baselines of baseline rules: learn the normal level, judge a deviation.

Two methods (``baseline.method`` of the rule):

``ewma``
    Exponentially weighted mean and variance over the scope's windows (weight ``alpha`` of each
    new window, or a half-life in windows). Judged only after ``warmup_windows`` windows.
``same_hour``
    One slot per hour of the day (UTC). Each slot learns the windows of the current day, and
    when a window of a later day arrives, the day folds into the slot's history: an
    exponentially weighted mixture over days (half-life ``half_life_days``), keeping the
    variance between windows and between days. A window is judged against the history of its
    hour only (the same hour of previous days), once the slot has ``warmup_days`` days.

A value is a breach when it moves in the rule's ``direction`` by more than ``k_sigma`` standard
deviations AND by at least ``min_abs_change`` (so a flat baseline with sigma 0 cannot fire on a
tiny change). Anomalous windows, in either direction, are not learnt (an incident does not become
the new normal); others are. State is a few floats per scope (per slot), serialised as dicts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from schemas.rules import BaselineParams

_HOUR_MS = 3_600_000
_DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Judgement:
    """The verdict on one value against a warmed-up baseline."""

    breach: bool
    """Anomalous in the rule's direction."""
    anomalous: bool
    """Beyond k sigma and min_abs_change in either direction (not learnt)."""
    mean: float
    sigma: float | None
    """How many standard deviations the value is away (None when the baseline has no spread)."""


def _judge(value: float, mean: float, var: float, params: BaselineParams) -> Judgement:
    deviation = value - mean
    std = math.sqrt(max(var, 0.0))
    if params.direction == "up":
        directed = deviation > 0.0
    elif params.direction == "down":
        directed = deviation < 0.0
    else:
        directed = deviation != 0.0
    size = abs(deviation)
    anomalous = size >= params.min_abs_change and size > params.k_sigma * std
    return Judgement(directed and anomalous, anomalous, mean, size / std if std > 0.0 else None)


@dataclass(slots=True)
class EwmaBaseline:
    mean: float = 0.0
    var: float = 0.0
    n: int = 0

    def judge(self, value: float, window_start_ms: int, params: BaselineParams) -> Judgement | None:
        """None while warming up."""
        if self.n < params.warmup_windows:
            return None
        return _judge(value, self.mean, self.var, params)

    def learn(self, value: float, window_start_ms: int, params: BaselineParams) -> None:
        if self.n == 0:
            self.mean, self.var = value, 0.0
        else:
            alpha = params.ewma_alpha
            diff = value - self.mean
            increment = alpha * diff
            self.mean += increment
            self.var = (1.0 - alpha) * (self.var + diff * increment)
        self.n += 1

    def to_dict(self) -> dict[str, Any]:
        return {"method": "ewma", "mean": self.mean, "var": self.var, "n": self.n}


@dataclass(slots=True)
class _Slot:
    mean: float = 0.0
    var: float = 0.0
    days: int = 0
    day: int = -1
    n: int = 0
    day_mean: float = 0.0
    day_m2: float = 0.0

    def roll(self, day: int, day_alpha: float) -> None:
        """Fold the learnt day into the history when a later day starts."""
        if day <= self.day:
            return
        if self.n > 0:
            day_var = self.day_m2 / self.n
            if self.days == 0:
                self.mean, self.var = self.day_mean, day_var
            else:
                a = day_alpha
                mixed = (1.0 - a) * self.mean + a * self.day_mean
                self.var = (1.0 - a) * (self.var + (self.mean - mixed) ** 2) + a * (
                    day_var + (self.day_mean - mixed) ** 2
                )
                self.mean = mixed
            self.days += 1
        self.day, self.n, self.day_mean, self.day_m2 = day, 0, 0.0, 0.0


@dataclass(slots=True)
class SameHourBaseline:
    slots: dict[int, _Slot] = field(default_factory=dict)

    def _slot(self, window_start_ms: int, params: BaselineParams) -> _Slot:
        hour = window_start_ms // _HOUR_MS % 24
        slot = self.slots.get(hour)
        if slot is None:
            slot = self.slots[hour] = _Slot()
        slot.roll(window_start_ms // _DAY_MS, params.day_alpha)
        return slot

    def judge(self, value: float, window_start_ms: int, params: BaselineParams) -> Judgement | None:
        slot = self._slot(window_start_ms, params)
        if slot.days < params.warmup_days:
            return None
        return _judge(value, slot.mean, slot.var, params)

    def learn(self, value: float, window_start_ms: int, params: BaselineParams) -> None:
        slot = self._slot(window_start_ms, params)
        slot.n += 1
        delta = value - slot.day_mean
        slot.day_mean += delta / slot.n
        slot.day_m2 += delta * (value - slot.day_mean)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "same_hour",
            "slots": {
                str(hour): [s.mean, s.var, s.days, s.day, s.n, s.day_mean, s.day_m2]
                for hour, s in sorted(self.slots.items())
            },
        }


Baseline = EwmaBaseline | SameHourBaseline


def new_baseline(params: BaselineParams) -> Baseline:
    return EwmaBaseline() if params.method == "ewma" else SameHourBaseline()


def baseline_from_dict(data: dict[str, Any]) -> Baseline:
    """Inverse of ``to_dict``; raise ValueError for a malformed document."""
    method = data.get("method")
    if method == "ewma":
        mean, var, n = float(data["mean"]), float(data["var"]), int(data["n"])
        if not (math.isfinite(mean) and math.isfinite(var)) or var < 0 or n < 0:
            raise ValueError("ewma baseline out of range")
        return EwmaBaseline(mean, var, n)
    if method == "same_hour":
        slots: dict[int, _Slot] = {}
        for hour, values in dict(data["slots"]).items():
            mean, var, days, day, n, day_mean, day_m2 = values
            if not 0 <= int(hour) < 24:
                raise ValueError(f"hour slot {hour} out of range")
            slots[int(hour)] = _Slot(
                float(mean), float(var), int(days), int(day), int(n), float(day_mean),
                float(day_m2),
            )  # fmt: skip
        return SameHourBaseline(slots)
    raise ValueError(f"unknown baseline method {method!r}")
