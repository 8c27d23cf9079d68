-- The verdicts each launch had at its last alert evaluation ({"launch": ..., "kpi:<id>": ...}),
-- so "a verdict changed since the last evaluation" survives restarts. Append-only: a launch's
-- evaluation is its last row inserted (by _block_number), as DuckDB's upsert keeps the last.
create table if not exists launch_evaluations (
    launch_key String,
    verdicts String,
    as_of DateTime64(6, 'UTC'),
    evaluated_at DateTime64(6, 'UTC')
)
engine = MergeTree
order by launch_key
settings enable_block_number_column = 1, non_replicated_deduplication_window = 1000,
    fsync_after_insert = 1, fsync_part_directory = 1
