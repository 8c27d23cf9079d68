-- Restore: inserts every row of the Parquet file $path into alerts (an empty table).
insert into alerts
select * from read_parquet($path)
