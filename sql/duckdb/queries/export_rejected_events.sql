-- Backup: writes every row of rejected_events to the Parquet file $path.
copy (select * from rejected_events) to $path (format parquet)
