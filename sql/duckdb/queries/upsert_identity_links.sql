-- Records anonymous_id -> user_id links; an earlier link replaces a later one.
-- Reads staged_links (anonymous_id, user_id, linked_at; one row per anonymous_id), an Arrow
-- table that DuckDB finds as a local variable of that name in the calling Python function (a
-- replacement scan; see _execute_staged in app/storage/duckdb_events.py).
insert into identity_links
select anonymous_id, user_id, linked_at from staged_links
on conflict (anonymous_id) do update
    set user_id = excluded.user_id, linked_at = excluded.linked_at
    where excluded.linked_at < identity_links.linked_at
