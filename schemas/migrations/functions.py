"""The latency histogram in ClickHouse SQL, rendered from :mod:`schemas.latency_buckets`.

Nothing here repeats a number by hand: the constants are formatted with ``repr`` (exact,
round-tripping float literals) so SQL and Python compute the same representative values (up to
the last bit: the engine's ``pow`` is not the C library's, about 3% of keys differ by one ulp), and
``pwm_quantile`` follows :func:`schemas.latency_buckets.quantile_from_counts` step by step:
sort the buckets by key, take the lower rank ``floor(q * (n - 1))``, pick the first bucket whose
cumulative count exceeds it and return its representative value (``NULL`` for no data).
"""

from __future__ import annotations

from schemas.latency_buckets import GAMMA, MIN_LATENCY_MS, sql_key_expr

__all__ = [
    "BUCKET_VALUE_FUNCTION",
    "QUANTILE_FUNCTION",
    "bucket_value_lambda",
    "latency_bucket_expr",
    "quantile_lambda",
]

BUCKET_VALUE_FUNCTION = "pwm_bucket_value"
"""``pwm_bucket_value(key)``: the representative latency (ms) of a bucket key."""

QUANTILE_FUNCTION = "pwm_quantile"
"""``pwm_quantile(q, buckets)``: the ``q`` quantile (ms) of a ``Map(UInt16, UInt64)``."""


def bucket_value_lambda() -> str:
    """Body of ``pwm_bucket_value``, as :func:`schemas.latency_buckets.bucket_value`."""
    factor = MIN_LATENCY_MS * 2.0 / (GAMMA + 1.0)
    return f"(key) -> if(key = 0, 0., {factor!r} * pow({GAMMA!r}, key))"


def quantile_lambda() -> str:
    """Body of ``pwm_quantile``, as :func:`schemas.latency_buckets.quantile_from_counts`."""
    total = "arraySum(mapValues(buckets))"
    checked_q = "(q + throwIf(q < 0 OR q > 1, 'pwm_quantile: q must be within [0, 1]'))"
    rank = f"floor({checked_q} * ({total} - 1))"
    cumulative = "arrayCumSum(arraySort((v, k) -> k, mapValues(buckets), mapKeys(buckets)))"
    first_index = f"arrayFirstIndex(c -> c > {rank}, {cumulative})"
    key = f"arraySort(mapKeys(buckets))[{first_index}]"
    return f"(q, buckets) -> if({total} = 0, NULL, {BUCKET_VALUE_FUNCTION}({key}))"


def latency_bucket_expr(column: str = "latency_ms") -> str:
    """The bucket key of a latency column (a trusted column name)."""
    return sql_key_expr(column)
