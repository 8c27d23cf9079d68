-- Backup: writes every row of deliveries to the Parquet file $path.
copy (select * from deliveries) to $path (format parquet)
