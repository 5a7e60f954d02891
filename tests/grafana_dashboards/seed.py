"""History spanning 13 months, written in a few statements (INSERT ... SELECT FROM numbers()).

Each period is written once, at the finest tier that should hold it, and the schema's
materialized views roll it up, as they do for real flushes: the last 2 hours as 10 s windows
(``agg_10s``, from a whole hour), the 89 days before as minutes (``agg_1m``, one every 10
minutes), the 10 months before as hours (``agg_1h``): 13 months in all. So every tier, the
pool-level rollups included, agrees with the others. Per-proxy rows (``proxy_1m``): every
minute for the last 2 hours, every 30 minutes back to 89 days (rolled up into ``proxy_1d``),
and days (``proxy_1d``) for the 10 months before. Alert history: incidents
firing now in alpha/eu-west and beta/us-east, a fleet-wide one resolved 10 days ago, one
resolved 200 days ago. Values are deterministic functions of the row number; latency buckets
are real keys of ``schemas.latency_buckets`` (around 20 ms to 2 s).
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.latency_buckets import bucket_key
from stream_app.storage.client import StorageClient

__all__ = ["POOLS", "REGIONS", "Seeded", "seed"]

POOLS = ("alpha", "beta", "gamma")
REGIONS = ("eu-west", "us-east")
PROXIES_PER_SCOPE = 4
DAY_S = 86_400

_SCOPES = len(POOLS) * len(REGIONS)
_POOL = f"[{', '.join(repr(p) for p in POOLS)}][number % {len(POOLS)} + 1]"
_REGION = (
    f"[{', '.join(repr(r) for r in REGIONS)}][intDiv(number, {len(POOLS)}) % {len(REGIONS)} + 1]"
)
_MEASURES = """
    toUInt64(50 + number % 50) AS requests,
    toUInt64(45 + number % 50 - number % 3) AS successes,
    map('success', toUInt64(45 + number % 50 - number % 3), 'timeout', toUInt64(number % 3),
        'http_error', toUInt64(3), 'connection_error', toUInt64(2)) AS outcomes,
    map('2xx', toUInt64(45), '5xx', toUInt64(5)) AS status_classes,
    mapFromArrays(arrayMap(i -> toUInt16({k0} + i * 8 + number % 5), range(30)),
                  arrayMap(i -> toUInt64(1 + (number + i) % 3), range(30))) AS latency_buckets,
    1000.0 AS latency_sum_ms, 5.0 AS latency_min_ms, 900.0 AS latency_max_ms,
    toUInt64(10000) AS bytes_in, toUInt64(1000) AS bytes_out,
    toUInt64(55) AS attempts, toUInt64(0) AS late_events"""


@dataclass(frozen=True, slots=True)
class Seeded:
    database: str
    now_s: int
    """The seeded history ends here (the tests' "now")."""


def _scope_insert(db: str, table: str, start_s: int, step_s: int, rows: int) -> str:
    window_s = ", toUInt32(10) AS window_s" if table == "agg_10s" else ""
    return f"""
INSERT INTO {db}.{table}
SELECT toDateTime({start_s} + intDiv(number, {_SCOPES}) * {step_s}, 'UTC') AS window_start
    {window_s}, {_POOL} AS pool, {_REGION} AS region, {_MEASURES.format(k0=bucket_key(20.0))},
    arrayReduce('uniqCombinedState', arrayMap(i -> toString(number % 7 + i), range(3))) AS proxies
FROM numbers({rows})"""


def _proxy_insert(db: str, start_s: int, step_s: int, steps: int, table: str = "proxy_1m") -> str:
    per_step = _SCOPES * PROXIES_PER_SCOPE
    window_s = "toUInt32(60) AS window_s, " if table == "proxy_1m" else ""
    return f"""
INSERT INTO {db}.{table}
SELECT toDateTime({start_s} + intDiv(number, {per_step}) * {step_s}, 'UTC') AS window_start,
    {window_s}{_POOL} AS pool, {_REGION} AS region,
    lower(hex(SHA256(concat({_POOL}, {_REGION}, toString(intDiv(number, {_SCOPES}) %
        {PROXIES_PER_SCOPE})))))
        AS proxy_id,
    {_MEASURES.format(k0=bucket_key(20.0))}
FROM numbers({steps * per_step})"""


def _alerts_insert(db: str, now_s: int) -> str:
    rows = [
        # fingerprint, status, pool, region, starts (s ago), ends (s ago or None)
        ("alpha-now", "firing", "alpha", "eu-west", 300, None),
        ("beta-now", "firing", "beta", "us-east", 600, None),
        ("fleet-10d", "firing", "", "", 10 * DAY_S + 3_600, None),
        ("fleet-10d", "resolved", "", "", 10 * DAY_S + 3_600, 10 * DAY_S),
        ("beta-200d", "firing", "beta", "us-east", 200 * DAY_S, None),
        ("beta-200d", "resolved", "beta", "us-east", 200 * DAY_S, 200 * DAY_S - 7_200),
    ]
    values = []
    for fingerprint, status, pool, region, starts_ago, ends_ago in rows:
        ends = "NULL" if ends_ago is None else f"toDateTime64({now_s - ends_ago}, 3, 'UTC')"
        values.append(
            f"(now64(3), '{fingerprint}', '{status}', 'ErrorRateHigh', 'error-rate', 'page', "
            f"'{pool}', '{region}', '', map(), map('summary', 'error rate above 5%'), "
            f"toDateTime64({now_s - starts_ago}, 3, 'UTC'), {ends}, 0.2, 0.05, NULL, NULL, "
            "NULL, '')"
        )
    return f"INSERT INTO {db}.alert_history VALUES {', '.join(values)}"


def seed(client: StorageClient, db: str, now_s: int) -> Seeded:
    """Fill database ``db`` (migrated) with the history described in the module docstring."""
    now_s = now_s // 60 * 60
    tens_from = now_s // 3_600 * 3_600 - 2 * 3_600
    minutes_from = tens_from - 89 * DAY_S
    hours_from = minutes_from - 306 * DAY_S
    client.command(_scope_insert(db, "agg_10s", tens_from, 10, (now_s - tens_from) // 10 * _SCOPES))
    client.command(
        _scope_insert(db, "agg_1m", minutes_from, 600, (tens_from - minutes_from) // 600 * _SCOPES)
    )
    hours = (minutes_from - hours_from) // 3_600
    client.command(_scope_insert(db, "agg_1h", hours_from, 3_600, hours * _SCOPES))
    client.command(_proxy_insert(db, now_s - 7_200, 60, 120))
    client.command(_proxy_insert(db, now_s - 89 * DAY_S, 1_800, (89 * DAY_S - 7_200) // 1_800))
    proxy_minutes_from = now_s - 89 * DAY_S
    proxy_days_from = proxy_minutes_from // DAY_S * DAY_S - 306 * DAY_S
    days = (proxy_minutes_from // DAY_S * DAY_S - proxy_days_from) // DAY_S
    client.command(_proxy_insert(db, proxy_days_from, DAY_S, days, table="proxy_1d"))
    client.command(_alerts_insert(db, now_s))
    return Seeded(db, now_s)
