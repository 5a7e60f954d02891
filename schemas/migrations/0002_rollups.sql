-- The rollup cascade: agg_10s -> agg_1m -> agg_1h -> agg_1d. Each level is filled by a
-- materialized view on the level below, block by block, as the flush insert cascades through;
-- the insert's deduplication token reaches every level, so a re-delivered flush changes nothing.
-- The 1m level assumes the pool x region window divides 60 s (1h and 1d: 3600 s).

-- +up
CREATE TABLE IF NOT EXISTS ${db}.agg_1m ${on_cluster}
(
    window_start DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    window_s UInt32 ALIAS 60,
    pool LowCardinality(String),
    region LowCardinality(String),
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
    late_events SimpleAggregateFunction(sum, UInt64),
    proxies AggregateFunction(uniqCombined, String)
)
ENGINE = ${aggregating_engine}
PARTITION BY toYYYYMMDD(window_start)
ORDER BY (pool, region, window_start)
TTL window_start + INTERVAL ${ttl_1m_days} DAY
SETTINGS ${table_settings};

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.agg_1m_mv ${on_cluster} TO ${db}.agg_1m AS
SELECT
    toStartOfMinute(window_start) AS window_start,
    pool,
    region,
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
    sum(late_events) AS late_events,
    uniqCombinedMergeState(proxies) AS proxies
FROM ${db}.agg_10s
GROUP BY window_start, pool, region;

CREATE TABLE IF NOT EXISTS ${db}.agg_1h ${on_cluster}
(
    window_start DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    window_s UInt32 ALIAS 3600,
    pool LowCardinality(String),
    region LowCardinality(String),
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
    late_events SimpleAggregateFunction(sum, UInt64),
    proxies AggregateFunction(uniqCombined, String)
)
ENGINE = ${aggregating_engine}
PARTITION BY toYYYYMM(window_start)
ORDER BY (pool, region, window_start)
TTL window_start + INTERVAL ${ttl_1h_days} DAY
SETTINGS ${table_settings};

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.agg_1h_mv ${on_cluster} TO ${db}.agg_1h AS
SELECT
    toStartOfHour(window_start) AS window_start,
    pool,
    region,
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
    sum(late_events) AS late_events,
    uniqCombinedMergeState(proxies) AS proxies
FROM ${db}.agg_1m
GROUP BY window_start, pool, region;

CREATE TABLE IF NOT EXISTS ${db}.agg_1d ${on_cluster}
(
    window_start DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    window_s UInt32 ALIAS 86400,
    pool LowCardinality(String),
    region LowCardinality(String),
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
    late_events SimpleAggregateFunction(sum, UInt64),
    proxies AggregateFunction(uniqCombined, String)
)
ENGINE = ${aggregating_engine}
PARTITION BY toYear(window_start)
ORDER BY (pool, region, window_start)
TTL window_start + INTERVAL ${ttl_1d_days} DAY
SETTINGS ${table_settings};

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.agg_1d_mv ${on_cluster} TO ${db}.agg_1d AS
SELECT
    toStartOfDay(window_start) AS window_start,
    pool,
    region,
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
    sum(late_events) AS late_events,
    uniqCombinedMergeState(proxies) AS proxies
FROM ${db}.agg_1h
GROUP BY window_start, pool, region;

-- +down
DROP VIEW IF EXISTS ${db}.agg_1d_mv ${on_cluster} SYNC;
DROP TABLE IF EXISTS ${db}.agg_1d ${on_cluster} SYNC;
DROP VIEW IF EXISTS ${db}.agg_1h_mv ${on_cluster} SYNC;
DROP TABLE IF EXISTS ${db}.agg_1h ${on_cluster} SYNC;
DROP VIEW IF EXISTS ${db}.agg_1m_mv ${on_cluster} SYNC;
DROP TABLE IF EXISTS ${db}.agg_1m ${on_cluster} SYNC;
