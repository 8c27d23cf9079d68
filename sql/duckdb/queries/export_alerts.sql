-- Backup: writes every row of alerts to the Parquet file $path.
copy (select * from alerts) to $path (format parquet)
