-- Backup and restore: how many rows decisions holds.
select count(*) from decisions
