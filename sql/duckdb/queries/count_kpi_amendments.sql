-- Backup and restore: how many rows kpi_amendments holds.
select count(*) from kpi_amendments
