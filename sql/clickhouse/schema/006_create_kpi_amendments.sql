-- KPI changes made after launch: what changed, from what to what, when, by whom and why. The
-- DuckDB table's columns, in its order, then the change that wrote the row (seq, claim), which
-- counts only if its claim won in launch_claims (claim '': a restored row).
create table if not exists kpi_amendments (
    launch_key String,
    amendment_id Int32,
    kpi_id String,
    field String,
    old_value Nullable(String),
    new_value Nullable(String),
    amended_at DateTime64(6, 'UTC'),
    amended_by String,
    reason String,
    seq UInt64 default 0,
    claim String default ''
)
engine = MergeTree
order by (launch_key, amendment_id, kpi_id, field)
settings non_replicated_deduplication_window = 1000, fsync_after_insert = 1, fsync_part_directory = 1
