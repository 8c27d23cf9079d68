-- Stores staged rows that are all expected to be new (the fast path of group commit).
-- Fails with a constraint error when any row is already stored; the writer then retries the
-- group with insert_events, which skips stored rows one by one.
-- Reads the registered Arrow table staged_events (columns in events-table order).
insert into events
select * from staged_events
