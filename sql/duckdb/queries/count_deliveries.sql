-- Backup and restore: how many rows deliveries holds.
select count(*) from deliveries
