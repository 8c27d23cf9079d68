-- Stores the staged rows that are new; returns the (source, message_id) of each row inserted.
-- Reads staged_events, an Arrow table (columns in events-table order) that DuckDB finds as a
-- local variable of that name in the calling Python function (a replacement scan; see
-- _execute_staged in app/storage/duckdb_events.py), not a table or view of the database.
insert into events
select * from staged_events
on conflict do nothing
returning source, message_id
