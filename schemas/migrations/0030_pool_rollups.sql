-- Pool-level rollups: agg_1m, agg_1h and agg_1d summed over regions, one row per pool and
-- period. A query over every region of a pool, or the whole fleet, reads 20 times fewer rows
-- (one per pool instead of one per pool x region) and merges 20 times fewer bucket maps: the
-- fleet-wide dashboards of docker/grafana read them when every region is selected
-- (docs/grafana.md). Each is filled by a materialized view on its pool x region level, block by
-- block as the flush insert cascades, so the insert's deduplication token reaches it and a
-- re-delivered flush changes nothing here either. TTLs are those of the level it sums.
-- History stored before this migration is not copied (a migration runs DDL only): to fill
-- it, see docs/grafana.md ("Pool-level rollups").

-- +up
CREATE TABLE IF NOT EXISTS ${db}.agg_pool_1m ${on_cluster}
(
    window_start DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    window_s UInt32 ALIAS 60,
    pool LowCardinality(String),
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
ORDER BY (pool, window_start)
TTL window_start + INTERVAL ${ttl_1m_days} DAY
SETTINGS ${table_settings};

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.agg_pool_1m_mv ${on_cluster} TO ${db}.agg_pool_1m AS
SELECT
    window_start,
    pool,
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
GROUP BY window_start, pool;

CREATE TABLE IF NOT EXISTS ${db}.agg_pool_1h ${on_cluster}
(
    window_start DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    window_s UInt32 ALIAS 3600,
    pool LowCardinality(String),
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
ORDER BY (pool, window_start)
TTL window_start + INTERVAL ${ttl_1h_days} DAY
SETTINGS ${table_settings};

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.agg_pool_1h_mv ${on_cluster} TO ${db}.agg_pool_1h AS
SELECT
    window_start,
    pool,
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
GROUP BY window_start, pool;

CREATE TABLE IF NOT EXISTS ${db}.agg_pool_1d ${on_cluster}
(
    window_start DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    window_s UInt32 ALIAS 86400,
    pool LowCardinality(String),
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
ORDER BY (pool, window_start)
TTL window_start + INTERVAL ${ttl_1d_days} DAY
SETTINGS ${table_settings};

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.agg_pool_1d_mv ${on_cluster} TO ${db}.agg_pool_1d AS
SELECT
    window_start,
    pool,
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
FROM ${db}.agg_1d
GROUP BY window_start, pool;

-- +down
DROP VIEW IF EXISTS ${db}.agg_pool_1d_mv ${on_cluster} SYNC;
DROP TABLE IF EXISTS ${db}.agg_pool_1d ${on_cluster} SYNC;
DROP VIEW IF EXISTS ${db}.agg_pool_1h_mv ${on_cluster} SYNC;
DROP TABLE IF EXISTS ${db}.agg_pool_1h ${on_cluster} SYNC;
DROP VIEW IF EXISTS ${db}.agg_pool_1m_mv ${on_cluster} SYNC;
DROP TABLE IF EXISTS ${db}.agg_pool_1m ${on_cluster} SYNC;
