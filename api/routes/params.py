"""Query parameters shared by the REST v1 routers, validated before any query runs.

Names follow the stored labels (:data:`schemas.events.LABEL_PATTERN`); a time range is ``start``
and ``end`` (RFC 3339, or epoch seconds) or a ``range`` duration ending at ``end`` (default now),
bounded to 1970..2100 and to at most ten years. Anything else is a 422 problem naming the
parameter; nothing unvalidated reaches the query layer.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import HTTPException, Query, Request

from schemas.events import LABEL_PATTERN

__all__ = [
    "DURATION_PATTERN",
    "Pool",
    "Region",
    "TimeRange",
    "now_ms",
    "parse_duration_s",
    "time_range",
]

DURATION_PATTERN = r"^[1-9][0-9]{0,5}(s|m|h|d|w|y)$"
_UNIT_S = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 7 * 86_400, "y": 365 * 86_400}
MAX_SPAN_MS = 10 * 366 * 86_400_000
_MIN_MS = 0
_MAX_MS = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp() * 1000)

Pool = Annotated[
    str | None,
    Query(description="Pool name (all pools when absent)", pattern=LABEL_PATTERN, max_length=64),
]
Region = Annotated[
    str | None,
    Query(
        description="Region name (all regions when absent)", pattern=LABEL_PATTERN, max_length=64
    ),
]


def parse_duration_s(text: str) -> int:
    """``"90d"`` -> seconds (``s m h d w y``)."""
    match = re.fullmatch(DURATION_PATTERN, text)
    if match is None:
        raise ValueError(f"not a duration: {text!r}")
    return int(text[:-1]) * _UNIT_S[text[-1]]


def now_ms(request: Request) -> int:
    """The app's clock (tests freeze it), in epoch ms."""
    clock = getattr(request.app.state, "clock_s", None)
    return int((clock() if clock is not None else time.time()) * 1000)


def _invalid(parameter: str, reason: str) -> HTTPException:
    return HTTPException(status_code=422, detail=f"query parameter {parameter}: {reason}")


def _to_ms(parameter: str, value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    ms = int(value.timestamp() * 1000)
    if not _MIN_MS <= ms <= _MAX_MS:
        raise _invalid(parameter, "must be between 1970-01-01 and 2100-01-01")
    return ms


@dataclass(frozen=True, slots=True)
class TimeRange:
    """``[start_ms, end_ms)`` in epoch ms, and the clock's ``now_ms``."""

    start_ms: int
    end_ms: int
    now_ms: int


def time_range(
    request: Request,
    start: datetime | None,
    end: datetime | None,
    range_: str | None,
    *,
    default_range: str,
) -> TimeRange:
    """Resolve the parameters of a range (see the module doc); 422 when inconsistent."""
    now = now_ms(request)
    end_ms = now if end is None else _to_ms("end", end)
    if start is not None and range_ is not None:
        raise _invalid("range", "give start or range, not both")
    if start is not None:
        start_ms = _to_ms("start", start)
    else:
        start_ms = end_ms - parse_duration_s(range_ or default_range) * 1000
    if start_ms >= end_ms:
        raise _invalid("start", "must be before end")
    if end_ms - start_ms > MAX_SPAN_MS:
        raise _invalid("range", "at most ten years")
    if start_ms < _MIN_MS:
        raise _invalid("range", "must not start before 1970")
    return TimeRange(start_ms, end_ms, now)


StartParam = Annotated[
    datetime | None,
    Query(description="Range start (RFC 3339 or epoch seconds); default: end - range"),
]
EndParam = Annotated[
    datetime | None, Query(description="Range end (RFC 3339 or epoch seconds); default: now")
]
RangeParam = Annotated[
    str | None,
    Query(
        alias="range",
        description="Range length ending at end: 30s, 15m, 6h, 30d, 2w, 1y",
        pattern=DURATION_PATTERN,
        max_length=8,
    ),
]
