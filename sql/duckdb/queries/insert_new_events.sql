-- Stores staged rows that are all expected to be new (the fast path of group commit).
-- Fails with a constraint error when any row is already stored; the writer then retries the
-- group with insert_events, which skips stored rows one by one.
-- Reads staged_events, an Arrow table (columns in events-table order) that DuckDB finds as a
-- local variable of that name in the calling Python function (a replacement scan; see
-- _execute_staged in app/storage/duckdb_events.py), not a table or view of the database.
insert into events
select * from staged_events
