-- Backup and restore: how many rows launch_evaluations holds.
select count(*) from launch_evaluations
