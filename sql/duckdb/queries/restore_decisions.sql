-- Restore: inserts every row of the Parquet file $path into decisions (an empty table).
insert into decisions
select * from read_parquet($path)
