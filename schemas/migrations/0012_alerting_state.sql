-- Saved state of the fleet-wide rule engine (stream_app.alerting.placement.FleetRuleRunner):
-- the leader stores the engine snapshot after every evaluated window; a process that becomes
-- leader restores the latest one, so a failover neither re-fires alerts that are already
-- firing nor replays windows. Only the latest row per name is read; old rows expire.

-- +up
CREATE TABLE IF NOT EXISTS ${db}.alerting_state ${on_cluster}
(
    name LowCardinality(String),
    saved_at DateTime64(3, 'UTC'),
    window_end_ms Int64,
    state String CODEC(ZSTD(3))
)
ENGINE = ${merge_tree_engine}
ORDER BY (name, window_end_ms, saved_at)
TTL toDateTime(saved_at) + INTERVAL 7 DAY
SETTINGS ${table_settings};

-- +down
DROP TABLE IF EXISTS ${db}.alerting_state ${on_cluster} SYNC;
