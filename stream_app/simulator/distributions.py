"""Precomputed quantile tables: one ``random()`` draw per sample, no per-event math calls.

A log-normal variate with median 1 is ``exp(sigma * Z)``; instead of drawing ``Z`` each time,
:func:`lognormal_table` tabulates the distribution at ``TABLE_SIZE`` evenly spaced probabilities
and a draw ``u`` picks entry ``int(u * TABLE_SIZE)``. The leftover fraction of ``u * TABLE_SIZE``
is itself uniform and independent of the entry, so one draw can also feed a second, coarser
choice (a status code, a domain).
"""

from __future__ import annotations

import math
from statistics import NormalDist

__all__ = ["TABLE_SIZE", "lognormal_table"]

TABLE_SIZE = 4096
"""Entries per table: quantile steps of 1/4096, finer than the 2% latency buckets resolve."""

_STANDARD_NORMAL = NormalDist()


def lognormal_table(sigma: float, size: int = TABLE_SIZE) -> tuple[float, ...]:
    """Quantiles of ``exp(sigma * Z)`` (median 1) at probabilities ``(i + 0.5) / size``."""
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma!r}")
    inv_cdf = _STANDARD_NORMAL.inv_cdf
    return tuple(math.exp(sigma * inv_cdf((i + 0.5) / size)) for i in range(size))
