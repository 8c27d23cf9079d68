-- Restore: inserts every row of the Parquet file $path into launch_versions (an empty table).
insert into launch_versions
select * from read_parquet($path)
