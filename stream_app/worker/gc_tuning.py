"""Garbage-collector settings for a worker process.

The worker keeps many small long-lived objects (open per-proxy windows and their partial sums);
CPython's default generation-0 threshold (700 allocations) triggers collections that walk them
over and over: 25-35% of the aggregation CPU at fleet scale (docs/benchmarks.md). At start the
worker freezes what start-up allocated (``gc.freeze``: never scanned again) and raises the
generation-0 threshold. Reference counting still frees almost everything at once; only the
rare reference cycles wait longer. Process-wide: call it from the process entry point only.
"""

from __future__ import annotations

import gc
import logging

__all__ = ["tune_gc"]

logger = logging.getLogger(__name__)


def tune_gc(threshold0: int) -> None:
    """Freeze start-up objects and set the generation-0 threshold (0: leave Python's)."""
    if threshold0 <= 0:
        return
    gc.collect()
    gc.freeze()
    _, threshold1, threshold2 = gc.get_threshold()
    gc.set_threshold(threshold0, threshold1, threshold2)
    logger.info(
        "garbage collector: %d start-up objects frozen, generation-0 threshold %d",
        gc.get_freeze_count(),
        threshold0,
    )
