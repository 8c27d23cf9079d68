-- Backup: writes every row of launch_evaluations to the Parquet file $path.
copy (select * from launch_evaluations) to $path (format parquet)
