-- Restore: inserts every row of the Parquet file $path into api_keys (an empty table).
insert into api_keys
select * from read_parquet($path)
