-- The compare-and-set of launch changes: the n-th change of a launch is whoever's claim row for
-- (launch_key, n) was inserted first. Every claim is inserted with a deduplication token made
-- of (launch_key, seq), so a second claim of the same number is dropped by the server while the
-- first is in the deduplication window; past it, the first by _block_number still wins (block
-- numbers follow the order inserts become visible on one node, and
-- enable_block_number_column keeps them through merges). kind: 'version', 'amend', 'source' or
-- 'delete'. Not part of backups: restored rows carry no claim and always count.
create table if not exists launch_claims (
    launch_key String,
    seq UInt64,
    claim String,
    kind String,
    claimed_at DateTime64(6, 'UTC')
)
engine = MergeTree
order by (launch_key, seq)
settings enable_block_number_column = 1, non_replicated_deduplication_window = 1000,
    fsync_after_insert = 1, fsync_part_directory = 1
