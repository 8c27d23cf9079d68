-- Records the anonymous_id -> user_id links of an import chunk: per anonymous_id (or alias
-- previous_id), the earliest event linking it, ties to the first in the chunk's order (row_no,
-- anonymousId before previousId), as app/storage/duckdb_events.py's _earliest_links does for a
-- group of requests; an earlier link replaces a later one already stored.
-- Reads staged_rows (events-table columns, then row_no; every accepted row, duplicates too),
-- an Arrow table that DuckDB finds as a local variable of that name in the calling Python
-- function (a replacement scan; see _execute_staged in app/storage/duckdb_events.py).
insert into identity_links
with candidates as (
    select anonymous_id as linked_id, user_id, occurred_at, row_no, 1 as position
    from staged_rows
    where user_id is not null
    union all
    select previous_id, user_id, occurred_at, row_no, 2
    from staged_rows
    where user_id is not null
)

select linked_id, user_id, occurred_at
from candidates
where linked_id is not null and linked_id <> user_id
qualify row_number() over (partition by linked_id order by occurred_at, row_no, position) = 1
on conflict (anonymous_id) do update
    set user_id = excluded.user_id, linked_at = excluded.linked_at
    where excluded.linked_at < identity_links.linked_at
