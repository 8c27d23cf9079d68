-- Restore: inserts every row of the Parquet file $path into deliveries (an empty table).
insert into deliveries
select * from read_parquet($path)
