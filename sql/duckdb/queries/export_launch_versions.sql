-- Backup: writes every row of launch_versions to the Parquet file $path.
copy (select * from launch_versions) to $path (format parquet)
