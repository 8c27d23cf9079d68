-- Records refused events; a resent identical refusal is kept once.
-- Reads staged_rejected, an Arrow table that DuckDB finds as a local variable of that name in
-- the calling Python function (a replacement scan; see _execute_staged in
-- app/storage/duckdb_events.py).
insert into rejected_events
select * from staged_rejected
on conflict do nothing
