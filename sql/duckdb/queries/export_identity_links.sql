-- Backup: writes every row of identity_links to the Parquet file $path.
copy (select * from identity_links) to $path (format parquet)
