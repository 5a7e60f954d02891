-- Optional raw request events (off by default: StorageSettings.raw_events), kept for a short
-- time for drill-down and exact checks. Holds no proxy address, port, credential, path or
-- query: a proxy is its HMAC id, a target its domain at most. The bucket key is computed by
-- the server with the shared definition (schemas.latency_buckets.sql_key_expr).

-- +up
CREATE TABLE IF NOT EXISTS ${db}.requests_raw ${on_cluster}
(
    ts DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    event_id String,
    pool LowCardinality(String),
    region LowCardinality(String),
    proxy_id String,
    outcome LowCardinality(String),
    status_code UInt16,
    latency_ms Float64,
    latency_bucket UInt16 MATERIALIZED ${latency_bucket_expr},
    bytes_in UInt64,
    bytes_out UInt64,
    attempts UInt16,
    target_domain LowCardinality(String),
    source_host LowCardinality(String)
)
ENGINE = ${merge_tree_engine}
PARTITION BY toYYYYMMDD(ts)
ORDER BY (pool, region, ts)
TTL toDateTime(ts) + INTERVAL ${ttl_raw_hours} HOUR
SETTINGS ${table_settings};

-- +down
DROP TABLE IF EXISTS ${db}.requests_raw ${on_cluster} SYNC;
