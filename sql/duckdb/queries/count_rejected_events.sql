-- Backup and restore: how many rows rejected_events holds.
select count(*) from rejected_events
