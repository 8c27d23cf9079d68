-- Restore: inserts every row of the Parquet file $path into launch_versions (an empty table), by
-- column name, so a backup taken before a column was added still restores.
insert into launch_versions by name
select * from read_parquet($path)
