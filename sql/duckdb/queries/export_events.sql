-- Backup: writes every row of events to the Parquet file $path.
copy (select * from events) to $path (format parquet)
