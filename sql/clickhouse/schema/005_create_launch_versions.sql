-- Every version of every launch spec, as recorded: the DuckDB table's columns, in its order,
-- then the change that wrote the row. A change to a launch (app/storage/clickhouse_meta.py)
-- writes its rows first, tagged with its number (seq) and a claim token, and then claims that
-- number in launch_claims: the rows count only if their claim won (claim '' is a restored
-- row, which always counts). A version's source marked later is a copy of the version with
-- a higher seq; the copy with the highest seq is the version. A deletion is a claim of kind
-- 'delete' and hides every row of the launch with a lower seq.
create table if not exists launch_versions (
    launch_key String,
    version Int32,
    spec String,
    recorded_at DateTime64(6, 'UTC'),
    recorded_by String,
    source Nullable(String),
    seq UInt64 default 0,
    claim String default ''
)
engine = MergeTree
order by (launch_key, version, seq)
settings non_replicated_deduplication_window = 1000, fsync_after_insert = 1, fsync_part_directory = 1
