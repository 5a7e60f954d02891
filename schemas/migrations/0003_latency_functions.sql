-- SQL functions reading the latency histogram like schemas.latency_buckets (the same bucket;
-- a representative value may differ from Python's in the last bit: the engine's pow is not libm's):
--   pwm_bucket_value(key)      the representative latency (ms) of a bucket key (key 0 -> 0)
--   pwm_quantile(q, buckets)   quantile_from_counts: the bucket holding rank floor(q * (n - 1)),
--                              NULL for an empty map; q outside [0, 1] raises an error.
-- Their bodies are rendered from the constants of schemas.latency_buckets (see
-- schemas.migrations.functions). Functions are server-wide, not per database: every database
-- of this schema shares them, and rolling one database back past this step drops them; so
-- every migrate re-creates them while this migration is applied (reapply).
-- +reapply

-- +up
CREATE OR REPLACE FUNCTION pwm_bucket_value ${on_cluster} AS ${bucket_value_lambda};
CREATE OR REPLACE FUNCTION pwm_quantile ${on_cluster} AS ${quantile_lambda};

-- +down
DROP FUNCTION IF EXISTS pwm_quantile ${on_cluster};
DROP FUNCTION IF EXISTS pwm_bucket_value ${on_cluster};
