-- Backup and restore: how many rows events holds.
select count(*) from events
