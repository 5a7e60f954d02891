"""Exponential backoff with full jitter for retried deliveries."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently one event is retried against one sink.

    Delay before retry ``n`` (1-based) is drawn uniformly from
    ``[delay/2, delay]`` with ``delay = min(max_backoff_s, initial_backoff_s * multiplier**(n-1))``
    ("equal jitter": never zero, never synchronised across workers).
    """

    max_attempts: int = 5
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 10.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.initial_backoff_s < 0 or self.max_backoff_s < self.initial_backoff_s:
            raise ValueError("need 0 <= initial_backoff_s <= max_backoff_s")
        if self.multiplier < 1.0:
            raise ValueError("multiplier must be >= 1")

    def delay_s(self, retry: int, rng: random.Random | None = None) -> float:
        """The pause before retry number ``retry`` (1 = the first retry)."""
        if retry < 1:
            raise ValueError("retry numbers start at 1")
        ceiling = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (retry - 1))
        draw = (rng or random).random()
        return ceiling / 2.0 + draw * ceiling / 2.0
