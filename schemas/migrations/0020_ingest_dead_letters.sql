-- Dead letters of the HTTP ingest (POST /api/v1/ingest, api/routes/ingest.py): one row per
-- refused event (event_index: its position in the envelope's events) or per refused record
-- (event_index -1: not JSON, not an envelope, a bad envelope header), with the reason naming
-- the field and the payload as received (cut at 64 KiB). The sender's response carries the same
-- index and reason. Rows are written with an insert deduplication token derived from the
-- record, so a retried envelope is kept once (needs the deduplication window in
-- ${table_settings}). Kept 30 days.

-- +up
CREATE TABLE IF NOT EXISTS ${db}.ingest_dead_letters ${on_cluster}
(
    received_at DateTime64(3, 'UTC'),
    source_host String,
    batch_id String,
    event_index Int32,
    reason String,
    payload String CODEC(ZSTD(3))
)
ENGINE = ${merge_tree_engine}
PARTITION BY toYYYYMM(received_at)
ORDER BY (received_at, source_host, batch_id, event_index)
TTL toDateTime(received_at) + INTERVAL 30 DAY
SETTINGS ${table_settings};

-- +down
DROP TABLE IF EXISTS ${db}.ingest_dead_letters ${on_cluster} SYNC;
