-- Restore: inserts every row of the Parquet file $path into kpi_amendments (an empty table).
insert into kpi_amendments
select * from read_parquet($path)
