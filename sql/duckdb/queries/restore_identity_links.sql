-- Restore: inserts every row of the Parquet file $path into identity_links (an empty table).
insert into identity_links
select * from read_parquet($path)
