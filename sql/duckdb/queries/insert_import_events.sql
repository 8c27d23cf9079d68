-- Stores an import chunk's events: the first row of each (source, message_id) in the chunk's
-- order, unless that event is already stored; keeps the chunk's order. The statement's result
-- is the number of rows inserted.
-- Reads staged_rows (events-table columns, then row_no), an Arrow table that DuckDB finds as a
-- local variable of that name in the calling Python function (a replacement scan; see
-- _execute_staged in app/storage/duckdb_events.py).
insert into events
select * exclude (row_no)
from staged_rows
qualify row_number() over (partition by source, message_id order by row_no) = 1
order by row_no
on conflict do nothing
