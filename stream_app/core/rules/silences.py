"""Silences and maintenance windows: mute alerts by label matchers within a wall-clock range.

A silence mutes every alert whose labels satisfy all of its matchers (Alertmanager semantics)
from ``starts_at`` (inclusive) to ``ends_at`` (exclusive). A muted alert still runs through its
life in the engine; it only emits nothing: no firing event, no re-send, no notification. When
the silence ends while the alert still fires, the firing event goes out then (with its original
``startsAt``). A resolution is sent only for an alert whose firing was sent, so downstream
never keeps a stale firing alert and never sees a resolution of something it never saw.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from schemas.rule_matchers import LabelMatcher
from schemas.rules import Silence


@dataclass(frozen=True, slots=True)
class ActiveRange:
    silence_id: str
    starts_ms: int
    ends_ms: int
    matchers: tuple[LabelMatcher, ...]

    def mutes(self, labels: dict[str, str], now_ms: int) -> bool:
        if not self.starts_ms <= now_ms < self.ends_ms:
            return False
        return all(m.matches(labels) for m in self.matchers)


class Silencer:
    """The compiled silences of one rule set."""

    __slots__ = ("_ranges",)

    def __init__(self, silences: Iterable[Silence]) -> None:
        self._ranges = tuple(
            ActiveRange(
                s.id,
                round(s.starts_at.timestamp() * 1000),
                round(s.ends_at.timestamp() * 1000),
                tuple(m.compile() for m in s.matchers),
            )
            for s in silences
        )

    def silenced_by(self, labels: dict[str, str], now_ms: int) -> str | None:
        """The id of a silence muting ``labels`` at ``now_ms``, if any."""
        for silence in self._ranges:
            if silence.mutes(labels, now_ms):
                return silence.silence_id
        return None

    def next_end_ms(self, now_ms: int) -> int | None:
        """The next moment a silence active at ``now_ms`` ends (muted alerts may go out then)."""
        ends = [r.ends_ms for r in self._ranges if r.starts_ms <= now_ms < r.ends_ms]
        return min(ends) if ends else None
