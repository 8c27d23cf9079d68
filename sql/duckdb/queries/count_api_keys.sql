-- Backup and restore: how many rows api_keys holds.
select count(*) from api_keys
