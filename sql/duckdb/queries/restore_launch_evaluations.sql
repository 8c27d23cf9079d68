-- Restore: inserts every row of the Parquet file $path into launch_evaluations (an empty table).
insert into launch_evaluations
select * from read_parquet($path)
