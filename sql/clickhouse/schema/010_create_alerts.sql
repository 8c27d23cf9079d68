-- Warnings between meetings: one alert per time a condition started to hold for a launch (see
-- sql/duckdb/schema/013_create_alerts.sql), the DuckDB table's columns in its order, then the
-- claim token of its raise. Raising occurrence n inserts its row with a deduplication token of
-- (launch_key, kind, subject, n): the first row of an occurrence (by _block_number) is the
-- raise that happened. Clearing appends a copy with cleared_at set; the first such copy is
-- the clearing. claim '': a restored row or a clearing.
create table if not exists alerts (
    launch_key String,
    kind String,
    subject String,
    occurrence Int32,
    state String,
    message String,
    raised_at DateTime64(6, 'UTC'),
    as_of DateTime64(6, 'UTC'),
    cleared_at Nullable(DateTime64(6, 'UTC')),
    cleared_message Nullable(String),
    claim String default ''
)
engine = MergeTree
order by (launch_key, kind, subject, occurrence)
settings enable_block_number_column = 1, non_replicated_deduplication_window = 1000,
    fsync_after_insert = 1, fsync_part_directory = 1
