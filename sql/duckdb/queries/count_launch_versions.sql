-- Backup and restore: how many rows launch_versions holds.
select count(*) from launch_versions
