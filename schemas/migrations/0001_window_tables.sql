-- Tables every flush writes to, through one insert into the Null table `flush_ingest`:
-- pool x region partial sums (agg_10s), per-proxy partial sums (proxy_1m) and, per source
-- partition, the last offset stored (source_offsets). Rows are partial sums: the
-- AggregatingMergeTree engines add them up; readers still GROUP BY (parts merge lazily).
-- Placeholders: see schemas.migrations (rendered by stream_app.storage.migrate).

-- +up
CREATE TABLE IF NOT EXISTS ${db}.flush_ingest ${on_cluster}
(
    row_kind Enum8('scope' = 1, 'proxy' = 2, 'offset' = 3),
    window_start DateTime('UTC'),
    window_s UInt32,
    pool String,
    region String,
    proxy_id String,
    requests UInt64,
    successes UInt64,
    outcomes Map(String, UInt64),
    status_classes Map(String, UInt64),
    latency_buckets Map(UInt16, UInt64),
    latency_sum_ms Float64,
    latency_min_ms Float64,
    latency_max_ms Float64,
    bytes_in UInt64,
    bytes_out UInt64,
    attempts UInt64,
    late_events UInt64,
    proxies Array(String),
    source String,
    partition UInt32,
    first_offset UInt64,
    last_offset UInt64
)
ENGINE = Null;

CREATE TABLE IF NOT EXISTS ${db}.agg_10s ${on_cluster}
(
    window_start DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    window_s UInt32,
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
ORDER BY (pool, region, window_start, window_s)
TTL window_start + INTERVAL ${ttl_10s_days} DAY
SETTINGS ${table_settings};

CREATE TABLE IF NOT EXISTS ${db}.proxy_1m ${on_cluster}
(
    window_start DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    window_s UInt32,
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
PARTITION BY toYYYYMMDD(window_start)
ORDER BY (pool, region, proxy_id, window_start, window_s)
TTL window_start + INTERVAL ${ttl_proxy_1m_days} DAY
SETTINGS ${table_settings};

CREATE TABLE IF NOT EXISTS ${db}.source_offsets ${on_cluster}
(
    source String,
    partition UInt32,
    last_offset SimpleAggregateFunction(max, UInt64),
    flushes SimpleAggregateFunction(sum, UInt64),
    updated_at SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = ${aggregating_engine}
ORDER BY (source, partition)
SETTINGS ${table_settings};

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.agg_10s_mv ${on_cluster} TO ${db}.agg_10s AS
SELECT
    window_start, window_s, pool, region, requests, successes, outcomes, status_classes,
    latency_buckets, latency_sum_ms, latency_min_ms, latency_max_ms, bytes_in, bytes_out,
    attempts, late_events, arrayReduce('uniqCombinedState', proxies) AS proxies
FROM ${db}.flush_ingest
WHERE row_kind = 'scope';

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.proxy_1m_mv ${on_cluster} TO ${db}.proxy_1m AS
SELECT
    window_start, window_s, pool, region, proxy_id, requests, successes, outcomes,
    status_classes, latency_buckets, latency_sum_ms, latency_min_ms, latency_max_ms, bytes_in,
    bytes_out, attempts, late_events
FROM ${db}.flush_ingest
WHERE row_kind = 'proxy';

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.source_offsets_mv ${on_cluster} TO ${db}.source_offsets AS
SELECT source, partition, last_offset, toUInt64(1) AS flushes, now64(3, 'UTC') AS updated_at
FROM ${db}.flush_ingest
WHERE row_kind = 'offset';

-- +down
DROP VIEW IF EXISTS ${db}.source_offsets_mv ${on_cluster} SYNC;
DROP VIEW IF EXISTS ${db}.proxy_1m_mv ${on_cluster} SYNC;
DROP VIEW IF EXISTS ${db}.agg_10s_mv ${on_cluster} SYNC;
DROP TABLE IF EXISTS ${db}.source_offsets ${on_cluster} SYNC;
DROP TABLE IF EXISTS ${db}.proxy_1m ${on_cluster} SYNC;
DROP TABLE IF EXISTS ${db}.agg_10s ${on_cluster} SYNC;
DROP TABLE IF EXISTS ${db}.flush_ingest ${on_cluster} SYNC;
