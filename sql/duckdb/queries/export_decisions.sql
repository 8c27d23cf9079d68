-- Backup: writes every row of decisions to the Parquet file $path.
copy (select * from decisions) to $path (format parquet)
