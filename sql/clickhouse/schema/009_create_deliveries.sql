-- What was sent where, per subject ('review:2026-W47', 'alert:<alert_id>') and channel
-- ('email', 'webhook'): the DuckDB table's columns, in its order, then the row's revision and
-- claim token. Every change (a claim before sending, a retake, the result) is a new row with
-- the next revision, inserted with a deduplication token of (subject, channel, revision): the
-- first row of a revision (by _block_number) is the one that happened, and the delivery is
-- its highest revision. So a week goes out once per channel whatever processes there are.
-- revision 0: a restored row.
create table if not exists deliveries (
    subject String,
    channel String,
    status String,
    attempts Int32,
    claimed_by String,
    lease_until Nullable(DateTime64(6, 'UTC')),
    next_attempt_at Nullable(DateTime64(6, 'UTC')),
    created_at DateTime64(6, 'UTC'),
    updated_at DateTime64(6, 'UTC'),
    sent_at Nullable(DateTime64(6, 'UTC')),
    last_error Nullable(String),
    revision UInt64 default 0,
    claim String default ''
)
engine = MergeTree
order by (subject, channel, revision)
settings enable_block_number_column = 1, non_replicated_deduplication_window = 1000,
    fsync_after_insert = 1, fsync_part_directory = 1
