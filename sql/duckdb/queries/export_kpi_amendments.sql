-- Backup: writes every row of kpi_amendments to the Parquet file $path.
copy (select * from kpi_amendments) to $path (format parquet)
