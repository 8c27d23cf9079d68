-- Restore: inserts every row of the Parquet file $path into api_keys (an empty table), by
-- column name, so a backup taken before a column was added still restores.
insert into api_keys by name
select * from read_parquet($path)
