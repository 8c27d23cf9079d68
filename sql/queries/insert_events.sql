-- Stores the staged rows that are new; returns the (source, message_id) of each row inserted.
-- Reads the registered Arrow table staged_events (columns in events-table order).
insert into events
select * from staged_events
on conflict do nothing
returning source, message_id
