-- Backup: writes every row of api_keys to the Parquet file $path.
copy (select * from api_keys) to $path (format parquet)
