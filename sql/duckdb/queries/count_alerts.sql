-- Backup and restore: how many rows alerts holds.
select count(*) from alerts
