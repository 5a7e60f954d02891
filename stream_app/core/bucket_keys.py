"""Latency bucket keys of many latencies at once, bit for bit those of ``bucket_key``.

:func:`schemas.latency_buckets.bucket_key` is monotone in the latency, so its keys are fixed by
the smallest double at which each key starts. Those edges are found once, by bisection over the
ordered bit patterns of positive doubles *with bucket_key itself*, and ``np.searchsorted`` then
gives every key of an array. No numpy ``log`` is involved, so no last-bit difference between
libm and numpy's vectorised logarithm can move a latency to another bucket.
"""

from __future__ import annotations

import functools
import struct

import numpy as np
import numpy.typing as npt

from schemas.latency_buckets import GAMMA, MAX_KEY, MIN_LATENCY_MS, bucket_key

__all__ = ["bucket_edges", "bucket_keys"]


def _bits(x: float) -> int:
    return int(struct.unpack("<q", struct.pack("<d", x))[0])


def _double(bits: int) -> float:
    return float(struct.unpack("<d", struct.pack("<q", bits))[0])


@functools.cache
def bucket_edges() -> npt.NDArray[np.float64]:
    """``edges[k - 1]``: the smallest latency whose key is at least ``k``, for k in 1..MAX_KEY."""
    edges: list[float] = []
    floor = _bits(MIN_LATENCY_MS)  # key 0; every larger double has key >= 1
    for key in range(1, MAX_KEY + 1):
        # Bracket the edge near MIN_LATENCY_MS * GAMMA**(key - 1), widening until
        # bucket_key(lo) < key <= bucket_key(hi), then bisect.
        guess = max(_bits(MIN_LATENCY_MS * GAMMA ** (key - 1)), floor + 1)
        step = 64
        lo, hi = max(guess - step, floor), guess + step
        while lo > floor and bucket_key(_double(lo)) >= key:
            step *= 2
            lo = max(guess - step, floor)
        while bucket_key(_double(hi)) < key:
            step *= 2
            hi = guess + step
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if bucket_key(_double(mid)) >= key:
                hi = mid
            else:
                lo = mid
        edges.append(_double(hi))
        floor = lo
    return np.array(edges, dtype=np.float64)


def bucket_keys(latency_ms: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """The bucket key of every latency (non-negative, not NaN), as ``bucket_key`` computes it."""
    return np.searchsorted(bucket_edges(), latency_ms, side="right").astype(np.int64)
