-- Every accepted event, stored once per (source, message_id).
-- Times are DateTime64(6, 'UTC') (never the host's zone). occurred_at is the skew-corrected event
-- time. Duplicates collapse because the sort key is exactly (source, message_id) and nothing
-- time-derived: a retry that crosses UTC midnight gets another occurred_at but the same key, so
-- it still merges with the original (no partition by date either: merges never cross
-- partitions). keep_first makes the first received copy the one kept. Merges collapse
-- duplicates only eventually, so reads use FINAL; inserts carry an insert_deduplication_token,
-- which a single node honours only with non_replicated_deduplication_window above 0, and
-- fsync_after_insert makes an acknowledged insert durable on one node (docs/scale.md).
create table if not exists events (
    source String,
    message_id String,
    type LowCardinality(String),
    event Nullable(String),
    user_id Nullable(String),
    anonymous_id Nullable(String),
    previous_id Nullable(String),
    group_id Nullable(String),
    properties Nullable(String),
    traits Nullable(String),
    context Nullable(String),
    original_timestamp Nullable(DateTime64(6, 'UTC')),
    sent_at Nullable(DateTime64(6, 'UTC')),
    received_at DateTime64(6, 'UTC'),
    occurred_at DateTime64(6, 'UTC'),
    is_clamped Bool,
    api LowCardinality(String),
    keep_first UInt64 materialized 18446744073709551615 - toUInt64(toUnixTimestamp64Micro(received_at)),
    index occurred_at_minmax occurred_at type minmax granularity 1
)
engine = ReplacingMergeTree(keep_first)
order by (source, message_id)
settings non_replicated_deduplication_window = 1000, fsync_after_insert = 1, fsync_part_directory = 1
