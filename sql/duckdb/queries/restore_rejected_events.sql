-- Restore: inserts every row of the Parquet file $path into rejected_events (an empty table).
insert into rejected_events
select * from read_parquet($path)
