-- Per-proxy daily rollup: proxy_1m summed per UTC day, one row per pool x region x proxy and
-- day. A per-proxy read over more than a couple of days (the Top offenders table and the proxy
-- history of the proxies dashboard, docs/grafana.md) reads one row per proxy and day instead of
-- one per proxy and minute, and covers the ranges proxy_1m no longer holds (kept 90 days).
-- Filled by a materialized view on proxy_1m, block by block as the flush insert cascades, so
-- the insert's deduplication token reaches it and a re-delivered flush changes nothing here
-- either. The day level assumes the proxy window divides 3600 s.
-- History stored before this migration is not copied (a migration runs DDL only): to fill
-- it, see docs/grafana.md ("Per-proxy daily rollup").

-- +up
CREATE TABLE IF NOT EXISTS ${db}.proxy_1d ${on_cluster}
(
    window_start DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    window_s UInt32 ALIAS 86400,
    pool LowCardinality(String),
    region LowCardinality(String),
    proxy_id String,
    requests SimpleAggregateFunction(sum, UInt64),
    successes SimpleAggregateFunction(sum, UInt64),
    outcomes SimpleAggregateFunction(sumMap, Map(String, UInt64)),
    status_classes SimpleAggregateFunction(sumMap, Map(String, UInt64)),
    latency_buckets SimpleAggregateFunction(sumMap, Map(UInt16, UInt64)),
    latency_sum_ms SimpleAggregateFunction(sum, Float64),
    latency_min_ms SimpleAggregateFunction(min, Float64),
    latency_max_ms SimpleAggregateFunction(max, Float64),
    bytes_in SimpleAggregateFunction(sum, UInt64),
    bytes_out SimpleAggregateFunction(sum, UInt64),
    attempts SimpleAggregateFunction(sum, UInt64),
    late_events SimpleAggregateFunction(sum, UInt64)
)
ENGINE = ${aggregating_engine}
PARTITION BY toYYYYMM(window_start)
ORDER BY (pool, region, proxy_id, window_start)
TTL window_start + INTERVAL ${ttl_proxy_1d_days} DAY
SETTINGS ${table_settings};

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.proxy_1d_mv ${on_cluster} TO ${db}.proxy_1d AS
SELECT
    toStartOfDay(window_start) AS window_start,
    pool,
    region,
    proxy_id,
    sum(requests) AS requests,
    sum(successes) AS successes,
    sumMap(outcomes) AS outcomes,
    sumMap(status_classes) AS status_classes,
    sumMap(latency_buckets) AS latency_buckets,
    sum(latency_sum_ms) AS latency_sum_ms,
    min(latency_min_ms) AS latency_min_ms,
    max(latency_max_ms) AS latency_max_ms,
    sum(bytes_in) AS bytes_in,
    sum(bytes_out) AS bytes_out,
    sum(attempts) AS attempts,
    sum(late_events) AS late_events
FROM ${db}.proxy_1m
GROUP BY window_start, pool, region, proxy_id;

-- +down
DROP VIEW IF EXISTS ${db}.proxy_1d_mv ${on_cluster} SYNC;
DROP TABLE IF EXISTS ${db}.proxy_1d ${on_cluster} SYNC;
