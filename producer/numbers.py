"""Slow-path checks of emit()'s numeric arguments (the fast path tests exact types inline).

Integers accept anything with ``__index__`` (numpy integers) but not bools or floats; latency
accepts any finite real number (numpy floats) but not strings or bools. Each failure raises
:class:`producer.errors.InvalidEvent` naming the field.
"""

from __future__ import annotations

import math
import operator

from producer.errors import InvalidEvent
from schemas.events import MAX_LATENCY_MS, Outcome

__all__ = ["OUTCOMES", "checked_int", "checked_latency"]

OUTCOMES: dict[str, Outcome] = {o.value: o for o in Outcome}
"""Outcome by value; ``Outcome`` members hash like their values, so they look up too."""

_INT_RANGES = {
    "status_code": (100, 599),
    "bytes_in": (0, 2**63 - 1),
    "bytes_out": (0, 2**63 - 1),
    "attempts": (1, 1000),
    "ts_ms": (0, 2**63 - 1),
}


def checked_int(field: str, value: object) -> int:
    if isinstance(value, bool):
        raise InvalidEvent(field, "must be an integer, not a bool")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidEvent(field, "must be an integer") from None
    low, high = _INT_RANGES[field]
    if not low <= number <= high:
        raise InvalidEvent(field, f"must be in [{low}, {high}]")
    return number


def checked_latency(value: object) -> float:
    if isinstance(value, bool | str | bytes):
        raise InvalidEvent("latency_ms", "must be a number")
    if not isinstance(value, int | float):
        try:  # numpy scalars and other real numbers
            value = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InvalidEvent("latency_ms", "must be a number") from None
    number = float(value)
    if not (math.isfinite(number) and 0.0 <= number <= MAX_LATENCY_MS):
        raise InvalidEvent("latency_ms", f"must be finite and in [0, {MAX_LATENCY_MS:.0f}]")
    return number
