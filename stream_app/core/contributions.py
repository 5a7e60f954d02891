"""Partial window sums handed from the core to a sink: the unit of an idempotent write.

The aggregator does not hold events back until a window closes before storing them: every flush
hands the sink what arrived since the previous flush, per (window, scope), together with the
source offset ranges it covers. Stored rows are partial sums that ClickHouse adds up (rollups
merge them with sum/sumMap), so a flush can be written, retried and deduplicated on its own: its
dedup token derives from the offset ranges, which the runtime commits only after the write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from stream_app.core.accumulator import Accumulator


class ScopeKey(NamedTuple):
    """A pool in a region, optionally narrowed to one proxy.

    A named tuple rather than a dataclass: a flush builds one per touched proxy, and a frozen
    dataclass costs several times more to construct.
    """

    pool: str
    region: str
    proxy_id: str | None = None


@dataclass(frozen=True, slots=True)
class SourceRange:
    """Offsets ``first..last`` (inclusive) of one partition of one source covered by a flush."""

    source: str
    partition: int
    first_offset: int
    last_offset: int


class Contribution(NamedTuple):
    """What one flush adds to one scope's window (a named tuple, for the same reason)."""

    scope: ScopeKey
    window_start_ms: int
    window_s: int
    acc: Accumulator


@dataclass(slots=True)
class Flush:
    """Everything one flush hands the sink: pool x region rows, per-proxy rows, offset ranges."""

    scopes: list[Contribution] = field(default_factory=list)
    proxies: list[Contribution] = field(default_factory=list)
    ranges: list[SourceRange] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.scopes and not self.proxies

    def dedup_token(self) -> str:
        """A token that is the same whenever the same offset ranges are written again."""
        if not self.ranges:
            raise ValueError("a flush without source ranges cannot be deduplicated")
        parts = sorted(
            f"{r.source}/{r.partition}/{r.first_offset}-{r.last_offset}" for r in self.ranges
        )
        return ";".join(parts)
