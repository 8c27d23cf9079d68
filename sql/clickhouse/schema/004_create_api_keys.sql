-- Keys are stored as SHA-256 hashes only; the secret is shown once, at creation. The DuckDB
-- table's columns, in its order (origins: [] for any origin, where DuckDB keeps NULL).
-- Append-only: a key is its creation row, and a revocation is a copy of it with revoked_at set
-- (inserted with a deduplication token per key, so of two revocations the first is kept). The
-- key as it stands is its first revocation row if any, else its first row, by _block_number
-- (the insert order on one node; kept through merges by enable_block_number_column).
create table if not exists api_keys (
    key_id String,
    name String,
    scope String,
    key_hash String,
    created_at DateTime64(6, 'UTC'),
    revoked_at Nullable(DateTime64(6, 'UTC')),
    origins Array(String)
)
engine = MergeTree
order by key_id
settings enable_block_number_column = 1, non_replicated_deduplication_window = 1000,
    fsync_after_insert = 1, fsync_part_directory = 1
