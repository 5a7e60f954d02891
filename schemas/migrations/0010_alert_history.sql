-- Alert history: one row per alert state change (firing, resolved) as delivered by the
-- alerting dispatcher (stream_app.alerting.history). Used by the API, exports and dashboard
-- annotations: an incident spans [starts_at, ends_at] of its fingerprint; a firing alert has
-- ends_at NULL until its resolved row arrives. Rows are written with an insert deduplication
-- token derived from the event itself, so a retried insert, or the same event written by two
-- workers, is stored once (needs the deduplication window in ${table_settings}).
-- Labels hold pool, region and rule ids, a proxy only as its HMAC id: no address ever.

-- +up
CREATE TABLE IF NOT EXISTS ${db}.alert_history ${on_cluster}
(
    recorded_at DateTime64(3, 'UTC'),
    fingerprint String,
    status Enum8('firing' = 1, 'resolved' = 2),
    alertname LowCardinality(String),
    rule_id LowCardinality(String),
    severity LowCardinality(String),
    pool LowCardinality(String),
    region LowCardinality(String),
    proxy_id String,
    labels Map(String, String),
    annotations Map(String, String),
    starts_at DateTime64(3, 'UTC'),
    ends_at Nullable(DateTime64(3, 'UTC')),
    value Nullable(Float64),
    threshold Nullable(Float64),
    baseline Nullable(Float64),
    window_start Nullable(DateTime64(3, 'UTC')),
    window_end Nullable(DateTime64(3, 'UTC')),
    generator_url String
)
ENGINE = ${merge_tree_engine}
PARTITION BY toYYYYMM(starts_at)
ORDER BY (starts_at, fingerprint, status)
SETTINGS ${table_settings};

-- +down
DROP TABLE IF EXISTS ${db}.alert_history ${on_cluster} SYNC;
