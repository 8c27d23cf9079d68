-- Restore: inserts every row of the Parquet file $path into events (an empty table).
insert into events
select * from read_parquet($path)
