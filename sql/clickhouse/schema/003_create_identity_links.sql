-- anonymous_id -> user_id links, from events carrying both and from alias (previous_id).
-- The earliest link of an anonymous_id wins; linked_at is the linking event's time. Rows are
-- only ever appended (the writer appends a link only when it is earlier than the one in force):
-- the link in force is argMin(user_id, (linked_at, recorded_at)) per anonymous_id, so a tie
-- keeps the one recorded first, as DuckDB's upsert does. recorded_at has a default so a
-- restore can insert the DuckDB table's three columns by name.
create table if not exists identity_links (
    anonymous_id String,
    user_id String,
    linked_at DateTime64(6, 'UTC'),
    recorded_at DateTime64(6, 'UTC') default now64(6)
)
engine = MergeTree
order by anonymous_id
settings non_replicated_deduplication_window = 1000, fsync_after_insert = 1, fsync_part_directory = 1
