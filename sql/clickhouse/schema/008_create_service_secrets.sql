-- Secrets the service makes for itself on first use (the key that signs sign-in sessions), so
-- they survive restarts. Not part of backups: a restored database makes its own. Processes
-- racing to make one insert with a deduplication token per name, and the first row inserted
-- (by _block_number) is the secret every process uses.
create table if not exists service_secrets (
    name String,
    value String,
    created_at DateTime64(6, 'UTC')
)
engine = MergeTree
order by name
settings enable_block_number_column = 1, non_replicated_deduplication_window = 1000,
    fsync_after_insert = 1, fsync_part_directory = 1
