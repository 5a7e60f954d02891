-- Rule change audit: one row per added, changed or removed rule, whoever made the change
-- (actor 'file:<path>' for a rules-file reload, 'api:<user>' for API edits). before / after
-- are the rule's JSON ('' when it did not exist); source_digest is the SHA-256 of the rules
-- file version that was put in force (empty for API edits). Written by
-- stream_app.alerting.history.RuleAuditWriter; a retried insert is deduplicated by a token
-- fixed per change batch (needs the deduplication window in ${table_settings}).

-- +up
CREATE TABLE IF NOT EXISTS ${db}.rule_audit ${on_cluster}
(
    changed_at DateTime64(3, 'UTC'),
    actor String,
    host LowCardinality(String),
    rule_id String,
    action Enum8('added' = 1, 'changed' = 2, 'removed' = 3),
    before String,
    after String,
    source_digest String
)
ENGINE = ${merge_tree_engine}
PARTITION BY toYYYYMM(changed_at)
ORDER BY (changed_at, rule_id)
SETTINGS ${table_settings};

-- +down
DROP TABLE IF EXISTS ${db}.rule_audit ${on_cluster} SYNC;
